/**
 * Lowering a checked machine to a Plan v1: firmware-like placement with every address
 * explicit. The decisions (boot layout, ACPI addresses, BAR windows) are documented in
 * lang/README.md; the numbers live in lang/specs.ts.
 */
import type { Diags } from "./program.ts";
import { error, hex, humanSize } from "./program.ts";
import type { ResolvedBar, ResolvedMachine, ResolvedPci } from "./check.ts";
import {
  ACPI_LAYOUT,
  ACPI_S5_SLEEP_TYPE,
  ACPI_SCI_IRQ,
  ACPI_SLEEP_PORTS,
  BOOT_LAYOUT,
  EBDA_START,
  FOUR_GIB,
  GiB,
  HIGH_MEMORY,
  IDENTITY_MAP_ADDR,
  IOAPIC_BASE,
  KVM_USER_MEM_SLOTS,
  LAPIC_BASE,
  MiB,
  PAGE,
  PCI_CONFIG_PORTS,
  PCI_IO_WINDOW,
  PLATFORM_REGIONS,
  TSS_ADDR,
} from "./specs.ts";
import {
  type BarPlan,
  type DevicePlan,
  type E820Entry,
  type HolePlan,
  MAX_GUEST_PHYS,
  type Memslot,
  type PciFunctionPlan,
  type Plan,
  PLAN_VERSION,
  type Range,
} from "../plan/types.ts";

/** Size of the 64-bit BAR window placed above RAM. */
export const MMIO64_SIZE = 64n * GiB;
/**
 * Shadow ECAM: one memfd chunk of 0xff bytes mapped repeatedly, one bus (1 MiB) per
 * mapping: 256 maps for 256 buses, far below vm.max_map_count. The whole chunk ends up
 * resident (the kernel's fault-around maps neighbouring pages), so the chunk size is the
 * window's host cost: measured by bench/hole (Pss), 1 MiB keeps it well under 2 MiB.
 */
export const SHADOW_CHUNK = 1n * MiB;

const n = (v: bigint): number => Number(v);

function alignUp(v: bigint, a: bigint): bigint {
  return (v + a - 1n) / a * a;
}

/** The largest gap of [lo, hi) not covered by `used` (ranges as [base, end)). */
function largestGap(lo: bigint, hi: bigint, used: [bigint, bigint][]): [bigint, bigint] | null {
  const cuts = used.filter(([b, e]) => e > lo && b < hi).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  let best: [bigint, bigint] | null = null;
  let cur = lo;
  const consider = (b: bigint, e: bigint) => {
    if (e > b && (!best || e - b > best[1] - best[0])) best = [b, e];
  };
  for (const [b, e] of cuts) {
    consider(cur, b < hi ? b : hi);
    if (e > cur) cur = e;
  }
  consider(cur, hi);
  return best;
}

export function lower(rm: ResolvedMachine, source: string | null, diags: Diags): Plan | null {
  const start = diags.length;

  // ── memslots ──
  const memslots: Memslot[] = rm.ram.map((r, i) => ({
    slot: i,
    name: r.name,
    guest_phys: n(r.base),
    size: n(r.size),
    flags: [],
    backing: { kind: "anonymous" },
  }));

  // ── hole, ECAM and windows ──
  let hole: HolePlan | null = null;
  const e = rm.hole?.ecam ?? null;
  const ecamSize = e ? BigInt(e.busEnd - e.busStart + 1) * MiB : 0n;
  if (rm.hole) {
    const h = rm.hole;
    const hEnd = h.base + h.size;
    let shadowSlot: number | null = null;
    // The chunk is known under either strategy: `plan` shows what `shadow` would cost.
    // (An ECAM window is a whole number of 1 MiB buses, so the 1 MiB chunk always divides it.)
    const chunk = e ? SHADOW_CHUNK : 0n;
    const present = e
      ? rm.pci
        .filter((f) => f.bus >= e.busStart && f.bus <= e.busEnd)
        .map((f) => ({
          offset: ((f.bus - e.busStart) << 20) | (f.device << 15) | (f.function << 12),
          bdf: f.bdf,
        }))
        .sort((a, b) => a.offset - b.offset)
      : [];
    // The runtime's host bridge always presents 00:00.0 of the first bus (a synthetic
    // 1b36:0008 unless the machine declares that function), so under `shadow` it needs
    // its own config page too, or it would read as absent there and present under `trap`.
    if (e && !present.some((p) => p.offset === 0)) {
      const b = e.busStart.toString(16).padStart(2, "0");
      present.unshift({ offset: 0, bdf: `${b}:00.0` });
    }
    if (e && h.strategy === "shadow") {
      shadowSlot = memslots.length;
      memslots.push({
        slot: shadowSlot,
        name: "ecam-shadow",
        guest_phys: n(e.base),
        size: n(ecamSize),
        flags: ["readonly"],
        backing: { kind: "ones_alias", chunk_size: n(chunk), present },
      });
    }
    // 32-bit BAR window: the largest free part of the hole below the IOAPIC, outside ECAM.
    const used: [bigint, bigint][] = PLATFORM_REGIONS.map((p) => [p.base, p.base + p.size]);
    used.push([IOAPIC_BASE, FOUR_GIB]);
    if (e) used.push([e.base, e.base + ecamSize]);
    const gap = largestGap(h.base, hEnd, used) ?? [h.base, h.base];
    const ramTop = rm.ram.reduce(
      (mx, r) => (r.base + r.size > mx ? r.base + r.size : mx),
      FOUR_GIB,
    );
    const m64 = alignUp(ramTop, GiB);
    const mmio64: Range | null = m64 + MMIO64_SIZE <= BigInt(MAX_GUEST_PHYS)
      ? { base: n(m64), size: n(MMIO64_SIZE) }
      : null;
    hole = {
      base: n(h.base),
      size: n(h.size),
      strategy: h.strategy,
      ecam: e
        ? {
          base: n(e.base),
          size: n(ecamSize),
          segment: 0,
          bus_start: e.busStart,
          bus_end: e.busEnd,
          shadow_slot: shadowSlot,
        }
        : null,
      mmio32: { base: n(gap[0]), size: n(gap[1] - gap[0]) },
      mmio64,
      io: { ...PCI_IO_WINDOW },
      // trap costs no host memory; shadow costs one chunk plus a page per present function.
      host_cost: {
        trap: 0,
        shadow: e ? n(chunk) + present.length * n(PAGE) : 0,
      },
    };
  }
  if (memslots.length > KVM_USER_MEM_SLOTS) {
    diags.push(
      error(
        "E0209",
        `this machine needs ${memslots.length} memslots; KVM allows ${KVM_USER_MEM_SLOTS}`,
        rm.span,
        "merge adjacent `ram` ranges (each range is one memslot)",
      ),
    );
  }

  // ── devices ──
  const devices: DevicePlan[] = rm.devices.map((d) => ({
    id: d.id,
    kind: d.kind,
    ports: d.ports.map((p) => ({ base: p.base, size: p.size })),
    mmio: [],
    irq: d.irq,
    props: d.props,
  }));
  if (rm.hole) {
    devices.push({
      id: "pci_host",
      kind: "pci_host",
      ports: [{ ...PCI_CONFIG_PORTS }],
      // Both strategies: under shadow, reads of the window hit the read-only slot but
      // writes still exit, and the bridge owns them.
      mmio: e ? [{ base: n(e.base), size: n(ecamSize) }] : [],
      irq: null,
      props: { strategy: rm.hole.strategy },
    });
  }

  if (rm.acpi) lowerAcpiSleep(rm, devices, diags);

  // ── PCI functions and BARs ──
  const barAddr = placeBars(rm, hole, diags);
  const multi = new Set<string>();
  const byDev = new Map<string, number>();
  for (const f of rm.pci) {
    const k = `${f.bus}:${f.device}`;
    byDev.set(k, (byDev.get(k) ?? 0) + 1);
  }
  for (const [k, c] of byDev) if (c > 1) multi.add(k);
  const pci: PciFunctionPlan[] = rm.pci
    .slice()
    .sort((a, b) => a.bus - b.bus || a.device - b.device || a.function - b.function)
    .map((f) => ({
      bdf: f.bdf,
      segment: f.segment,
      bus: f.bus,
      device: f.device,
      function: f.function,
      kind: f.kind,
      vendor_id: f.vendor_id,
      device_id: f.device_id,
      class_code: f.class_code,
      revision: f.revision,
      subsystem_vendor_id: f.subsystem_vendor_id,
      subsystem_id: f.subsystem_id,
      header_type: f.function === 0 && multi.has(`${f.bus}:${f.device}`) ? 0x80 : 0,
      bars: f.bars.map((b): BarPlan => ({
        index: b.index,
        kind: b.kind,
        size: n(b.size),
        address: n(barAddr.get(b) ?? 0n),
        prefetchable: b.prefetchable,
      })),
      interrupt_pin: f.interrupt_pin,
      irq: f.irq,
      props: f.props,
    }));

  // ── boot ──
  const b = rm.boot;
  if (b.protocol === "flat") {
    const inRam = (a: bigint) => rm.ram.some((r) => a >= r.base && a < r.base + r.size);
    if (b.load !== null && !inRam(b.load)) {
      diags.push(
        error(
          "E0502",
          `the load address ${hex(b.load)} is not in RAM`,
          b.span,
          "load flat binaries into RAM, e.g. at 0x10_0000",
        ),
      );
    } else if (b.entry !== null && !inRam(b.entry)) {
      diags.push(
        error(
          "E0502",
          `the entry point ${hex(b.entry)} is not in RAM`,
          b.span,
          "the entry is an address inside the loaded binary",
        ),
      );
    } else if (b.mode === "real" && b.entry !== null && b.entry > 0xffffn) {
      // The vCPU starts with CS base 0, so IP alone must reach the entry.
      diags.push(
        error(
          "E0502",
          `a real-mode entry must be below 0x1_0000, not ${hex(b.entry)}`,
          b.span,
          "load real-mode code low, e.g. `load 0x7C00`",
        ),
      );
    }
  }

  // ── e820 ──
  const e820: E820Entry[] = [];
  for (const r of rm.ram) {
    const lo = r.base;
    const hi = r.base + r.size;
    // Keep 0x9FC00 .. 1 MiB (EBDA, VGA, BIOS area) out of usable RAM.
    const holeLo = BigInt(EBDA_START);
    const holeHi = BigInt(HIGH_MEMORY);
    if (lo < holeLo) {
      e820.push({ addr: n(lo), size: n((hi < holeLo ? hi : holeLo) - lo), type: "ram" });
    }
    const from = lo > holeHi ? lo : holeHi;
    if (hi > from) e820.push({ addr: n(from), size: n(hi - from), type: "ram" });
  }
  if (rm.acpi) {
    e820.push({
      addr: ACPI_LAYOUT.rsdp_addr,
      size: ACPI_LAYOUT.tables_addr - ACPI_LAYOUT.rsdp_addr,
      type: "reserved",
    });
    e820.push({ addr: ACPI_LAYOUT.tables_addr, size: ACPI_LAYOUT.tables_size, type: "acpi" });
  }
  if (e) e820.push({ addr: n(e.base), size: n(ecamSize), type: "reserved" });
  for (const p of PLATFORM_REGIONS) {
    e820.push({ addr: n(p.base), size: n(p.size), type: "reserved" });
  }
  e820.sort((x, y) => x.addr - y.addr);

  if (diags.slice(start).some((d) => d.severity === "error")) return null;
  return {
    version: PLAN_VERSION,
    machine: rm.name,
    source,
    cpus: { count: rm.cpus, cpuid: { source: "kvm-supported", hide: rm.cpuidHide } },
    platform: {
      irqchip: "kernel",
      pit: true,
      tss_addr: n(TSS_ADDR),
      identity_map_addr: n(IDENTITY_MAP_ADDR),
      ioapic: { id: 0, base: n(IOAPIC_BASE), gsi_base: 0, pins: 24 },
      lapic_base: n(LAPIC_BASE),
    },
    memslots,
    hole,
    devices,
    pci,
    boot: {
      protocol: b.protocol,
      path: b.path,
      cmdline: b.cmdline,
      initrd: b.initrd,
      load_address: b.load === null ? null : n(b.load),
      entry: b.entry === null ? null : n(b.entry),
      cpu_mode: b.mode,
      layout: {
        info_addr: BOOT_LAYOUT.info_addr,
        cmdline_addr: BOOT_LAYOUT.cmdline_addr,
        cmdline_max: BOOT_LAYOUT.cmdline_max,
        memmap_addr: BOOT_LAYOUT.memmap_addr,
        gdt_addr: BOOT_LAYOUT.gdt_addr,
        page_tables_addr: BOOT_LAYOUT.page_tables_addr,
        stack_top: BOOT_LAYOUT.stack_top,
      },
    },
    e820,
    acpi: rm.acpi
      ? {
        oem_id: "VMDESC",
        oem_table_id: "VMDESCPL",
        rsdp_addr: ACPI_LAYOUT.rsdp_addr,
        tables_addr: ACPI_LAYOUT.tables_addr,
        tables_size: ACPI_LAYOUT.tables_size,
        sci_irq: ACPI_SCI_IRQ,
      }
      : null,
  };
}

/**
 * The ACPI sleep registers (how the guest powers off) at their fixed ports, unless the
 * machine put a device of its own there.
 */
function lowerAcpiSleep(rm: ResolvedMachine, devices: DevicePlan[], diags: Diags): void {
  const s = ACPI_SLEEP_PORTS;
  for (const d of rm.devices) {
    for (const p of d.ports) {
      if (p.base >= s.base + s.size || s.base >= p.base + p.size) continue;
      diags.push(
        error(
          "E0202",
          `I/O ports ${hex(p.base)}..${
            hex(p.base + p.size - 1)
          } of ${p.owner} overlap the ACPI sleep registers (${hex(s.base)}..${
            hex(s.base + s.size - 1)
          })`,
          p.span ?? d.span,
          "move the device to free ports, or build no ACPI tables (`acpi off`)",
        ),
      );
      return;
    }
  }
  devices.push({
    id: "acpi_sleep",
    kind: "acpi_sleep",
    ports: [{ ...s }],
    mmio: [],
    irq: null,
    props: { s5_type: ACPI_S5_SLEEP_TYPE },
  });
}

/**
 * Firmware-like BAR placement: per window, BARs sorted by size (largest first), each
 * naturally aligned, packed upwards from the window base. Largest-first keeps the packing
 * gap-free, as SeaBIOS and EDK2 do.
 */
function placeBars(
  rm: ResolvedMachine,
  hole: HolePlan | null,
  diags: Diags,
): Map<ResolvedBar, bigint> {
  const out = new Map<ResolvedBar, bigint>();
  if (!hole) return out;
  const all: { f: ResolvedPci; b: ResolvedBar }[] = [];
  for (const f of rm.pci) for (const b of f.bars) all.push({ f, b });
  const windows: Record<ResolvedBar["kind"], Range | null> = {
    mem32: hole.mmio32,
    mem64: hole.mmio64,
    io: hole.io,
  };
  for (const kind of ["mem32", "mem64", "io"] as const) {
    const bars = all
      .filter((x) => x.b.kind === kind)
      .sort((x, y) =>
        x.b.size > y.b.size
          ? -1
          : x.b.size < y.b.size
          ? 1
          : x.f.bdf < y.f.bdf
          ? -1
          : x.f.bdf > y.f.bdf
          ? 1
          : x.b.index - y.b.index
      );
    if (!bars.length) continue;
    const w = windows[kind];
    const wBase = BigInt(w?.base ?? 0);
    const wEnd = wBase + BigInt(w?.size ?? 0);
    let cur = wBase;
    for (const { f, b } of bars) {
      const at = alignUp(cur, b.size);
      if (!w || at + b.size > wEnd) {
        diags.push(
          error(
            "E0214",
            `BAR ${b.index} of ${f.bdf} (${humanSize(b.size)}) does not fit in the ${kind} window${
              w ? ` ${hex(wBase)} .. ${hex(wEnd)}` : ""
            }`,
            b.span,
            "make the BARs smaller or the PCI hole larger",
          ),
        );
        continue;
      }
      out.set(b, at);
      cur = at + b.size;
    }
  }
  return out;
}
