/**
 * Run statistics: exits by reason, accesses by device (each device's PIO and MMIO apart, so
 * the pci_host's ECAM exits show separately from its CF8/CFC ones), unclaimed accesses,
 * and time in the guest (inside KVM_RUN) versus in the VMM (between runs).
 *
 * Counting is a typed-array increment per exit; time is two vDSO clock_gettime calls per
 * exit (~60 ns each through FFI here, ~1% of a trapping exit).
 */
import { KVM_EXIT_NAMES } from "./kvm/abi.ts";

export interface DeviceStats {
  id: string;
  kind: string;
  /** Exits this device handled, by space. */
  pio_exits: number;
  mmio_exits: number;
  /** The model's own counters. */
  model: Record<string, number>;
}

export interface VcpuStats {
  vcpu: number;
  /** Number of KVM_RUN calls. */
  runs: number;
  exits: Record<string, number>;
  guest_ns: number;
  vmm_ns: number;
}

export interface RunStats {
  /** Wall time of the run, from the first KVM_RUN to the end (ms). */
  wall_ms: number;
  /** Totals over vCPUs. */
  exits_total: number;
  exits: Record<string, number>;
  devices: DeviceStats[];
  unclaimed: {
    pio_read: number;
    pio_write: number;
    mmio_read: number;
    mmio_write: number;
    readonly_write: number;
  };
  /** AP exits forwarded to vCPU 0's device thread. */
  forwarded: number;
  guest_ms: number;
  vmm_ms: number;
  vcpus: VcpuStats[];
}

/** Raw counters a run loop keeps (one per vCPU worker). */
export class Counters {
  readonly exits = new Float64Array(64);
  /** [device * 2 + 0] PIO, [device * 2 + 1] MMIO. */
  readonly device: Float64Array;
  /** pio read, pio write, mmio read, mmio write, write to read-only memory */
  readonly unclaimed = new Float64Array(5);
  runs = 0;
  forwarded = 0;
  guestNs = 0;
  vmmNs = 0;
  constructor(deviceCount: number) {
    this.device = new Float64Array(Math.max(1, deviceCount * 2));
  }

  exitsByName(): Record<string, number> {
    const out: Record<string, number> = {};
    this.exits.forEach((n, i) => {
      if (n > 0) out[KVM_EXIT_NAMES[i] ?? `exit_${i}`] = n;
    });
    return out;
  }
}

/** What a worker sends back: plain data. */
export interface WorkerStats {
  vcpu: VcpuStats;
  devices: DeviceStats[];
  unclaimed: number[];
  forwarded: number;
}

export function mergeStats(parts: WorkerStats[], wallMs: number): RunStats {
  const exits: Record<string, number> = {};
  let total = 0;
  const unclaimed = [0, 0, 0, 0, 0];
  let guest = 0;
  let vmm = 0;
  let forwarded = 0;
  const devices: DeviceStats[] = [];
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.vcpu.exits)) {
      exits[k] = (exits[k] ?? 0) + v;
      total += v;
    }
    p.unclaimed.forEach((v, i) => unclaimed[i] += v);
    guest += p.vcpu.guest_ns;
    vmm += p.vcpu.vmm_ns;
    forwarded += p.forwarded;
    devices.push(...p.devices);
  }
  return {
    wall_ms: wallMs,
    exits_total: total,
    exits,
    devices,
    unclaimed: {
      pio_read: unclaimed[0],
      pio_write: unclaimed[1],
      mmio_read: unclaimed[2],
      mmio_write: unclaimed[3],
      readonly_write: unclaimed[4],
    },
    forwarded,
    guest_ms: guest / 1e6,
    vmm_ms: vmm / 1e6,
    vcpus: parts.map((p) => p.vcpu).sort((a, b) => a.vcpu - b.vcpu),
  };
}

/** Human-readable stats for `boot --stats` (stderr). */
export function formatStats(s: RunStats): string {
  const lines: string[] = [];
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  lines.push(`── vmdesc stats ──`);
  lines.push(
    `wall ${ms(s.wall_ms)}   in guest (KVM_RUN) ${ms(s.guest_ms)}   in VMM ${ms(s.vmm_ms)}`,
  );
  lines.push(`exits ${s.exits_total}`);
  for (const [k, v] of Object.entries(s.exits).sort((a, b) => b[1] - a[1])) {
    lines.push(`  ${k.padEnd(16)} ${v}`);
  }
  lines.push(`exits by device`);
  for (const d of s.devices) {
    if (d.pio_exits > 0) lines.push(`  ${`${d.id} (pio)`.padEnd(24)} ${d.pio_exits}`);
    if (d.mmio_exits > 0) {
      const label = d.kind === "pci_host" ? `${d.id} (ecam mmio)` : `${d.id} (mmio)`;
      lines.push(`  ${label.padEnd(24)} ${d.mmio_exits}`);
    }
  }
  // Virtio devices: what they served, and every fault a guest caused (warned about once).
  for (const d of s.devices.filter((d) => d.kind.startsWith("virtio_"))) {
    const counts = Object.entries(d.model).filter(([, v]) => v !== 0);
    const faults = counts.filter(([k]) => k.startsWith("fault_"));
    const plain = counts.filter(([k]) => !k.startsWith("fault_"));
    lines.push(`${d.kind} ${d.id}: ${plain.map(([k, v]) => `${k} ${v}`).join("  ") || "idle"}`);
    if (faults.length) {
      lines.push(`  guest faults: ${faults.map(([k, v]) => `${k.slice(6)} ${v}`).join("  ")}`);
    }
  }
  const u = s.unclaimed;
  lines.push(
    `unclaimed  pio read ${u.pio_read}  pio write ${u.pio_write}  mmio read ${u.mmio_read}  mmio write ${u.mmio_write}  read-only writes ${u.readonly_write}`,
  );
  if (s.forwarded > 0) lines.push(`AP exits forwarded to vCPU 0: ${s.forwarded}`);
  return lines.join("\n");
}
