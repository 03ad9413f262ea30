/**
 * Run statistics: exits by reason, accesses by device (each device's PIO and MMIO apart, so
 * the pci_host's ECAM exits show separately from its CF8/CFC ones), unclaimed accesses,
 * and time in the guest (inside KVM_RUN) versus in the VMM (between runs).
 *
 * Counting is a typed-array increment per exit; time is two vDSO clock_gettime calls per
 * exit (~60 ns each through FFI here, ~1% of a trapping exit).
 *
 * Each vCPU's counters live in a SharedArrayBuffer its thread hands to the machine when it
 * is ready, so the machine's thread reads them while the guest runs (a control API's live
 * stats) without stopping the vCPU: plain loads of numbers a single thread writes, which
 * at worst are one exit behind.
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

const EXIT_SLOTS = 64;
const UNCLAIMED_SLOTS = 5;
const SCALARS = 4; // runs, forwarded, guest ns, vmm ns
const FIXED_SLOTS = EXIT_SLOTS + UNCLAIMED_SLOTS + SCALARS;

/** Raw counters a run loop keeps (one per vCPU), in shared memory (`buffer`). */
export class Counters {
  readonly buffer: SharedArrayBuffer;
  readonly exits: Float64Array;
  /** pio read, pio write, mmio read, mmio write, write to read-only memory */
  readonly unclaimed: Float64Array;
  /** [device * 2 + 0] PIO, [device * 2 + 1] MMIO. */
  readonly device: Float64Array;
  readonly #scalars: Float64Array;

  /** New counters for `deviceCount` devices, or a view of counters another thread keeps. */
  constructor(deviceCount: number, buffer?: SharedArrayBuffer) {
    this.buffer = buffer ??
      new SharedArrayBuffer((FIXED_SLOTS + Math.max(1, deviceCount * 2)) * 8);
    const all = new Float64Array(this.buffer);
    this.exits = all.subarray(0, EXIT_SLOTS);
    this.unclaimed = all.subarray(EXIT_SLOTS, EXIT_SLOTS + UNCLAIMED_SLOTS);
    this.#scalars = all.subarray(EXIT_SLOTS + UNCLAIMED_SLOTS, FIXED_SLOTS);
    this.device = all.subarray(FIXED_SLOTS);
  }

  get runs(): number {
    return this.#scalars[0];
  }
  set runs(n: number) {
    this.#scalars[0] = n;
  }
  get forwarded(): number {
    return this.#scalars[1];
  }
  set forwarded(n: number) {
    this.#scalars[1] = n;
  }
  get guestNs(): number {
    return this.#scalars[2];
  }
  set guestNs(n: number) {
    this.#scalars[2] = n;
  }
  get vmmNs(): number {
    return this.#scalars[3];
  }
  set vmmNs(n: number) {
    this.#scalars[3] = n;
  }

  /** This vCPU's numbers as plain data (`devices`: vCPU 0's device set's, else none). */
  workerStats(vcpu: number, devices: DeviceStats[]): WorkerStats {
    return {
      vcpu: {
        vcpu,
        runs: this.runs,
        exits: this.exitsByName(),
        guest_ns: this.guestNs,
        vmm_ns: this.vmmNs,
      },
      devices,
      unclaimed: [...this.unclaimed],
      forwarded: this.forwarded,
    };
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

/**
 * The numbers of a run in progress, from each vCPU's shared counters (`buffers`, by vCPU;
 * a vCPU not yet ready has none) and vCPU 0's answer to a `device-stats` call (`devices`,
 * which may be a few ms old; null when it could not answer: then each device of the Plan
 * is listed without model counters). Every exit count, the devices' too, comes from the
 * shared counters, so the numbers agree with each other.
 */
export function liveStats(
  buffers: readonly (SharedArrayBuffer | undefined)[],
  devices: DeviceStats[] | null,
  planDevices: readonly { id: string; kind: string }[],
  wallMs: number,
): RunStats {
  const parts: WorkerStats[] = [];
  buffers.forEach((buffer, i) => {
    if (!buffer) return;
    const c = new Counters(0, buffer);
    const listed = devices ?? planDevices.map((d) => ({ id: d.id, kind: d.kind, model: {} }));
    // vCPU 0's counters count every device's exits (the APs' are forwarded to it).
    const own = i !== 0 ? [] : listed.map((d, k) => ({
      id: d.id,
      kind: d.kind,
      pio_exits: c.device[k * 2] ?? 0,
      mmio_exits: c.device[k * 2 + 1] ?? 0,
      model: d.model,
    }));
    parts.push(c.workerStats(i, own));
  });
  return mergeStats(parts, wallMs);
}
