/**
 * Firmware-like placement decisions that both checking and lowering need: where the BAR
 * windows lie and how BARs pack into them, where virtio-mmio devices go and which IOAPIC
 * lines they get, and which memslots a machine takes. Lowering (lang/lower.ts) places with
 * them; checking (lang/check.ts, lang/check/fit.ts) runs the same functions first to report
 * what would not fit, so lowering never fails.
 */
import type { BarKind } from "../plan/types.ts";
import { MAX_GUEST_PHYS } from "../plan/types.ts";
import {
  ACPI_SCI_IRQ,
  FOUR_GIB,
  GiB,
  IOAPIC_BASE,
  MiB,
  PCI_IO_WINDOW,
  PLATFORM_IRQS,
  PLATFORM_REGIONS,
  VIRTIO_MMIO_ACPI_IRQS,
  VIRTIO_MMIO_ISA_IRQS,
  VIRTIO_MMIO_SIZE,
  VIRTIO_MMIO_WINDOW,
} from "./specs.ts";
import type {
  RamRange,
  ResolvedBar,
  ResolvedBoot,
  ResolvedDevice,
  ResolvedEcam,
  ResolvedHole,
  ResolvedPci,
} from "./check/model.ts";

/** Size of the 64-bit BAR window placed above RAM. */
export const MMIO64_SIZE = 64n * GiB;

export interface Window {
  base: bigint;
  size: bigint;
}

/** Where BARs of each kind go; no mem64 window when it would pass the 52-bit space. */
export interface BarWindows extends Record<BarKind, Window | null> {
  mem32: Window;
  mem64: Window | null;
  io: Window;
}

export function alignUp(v: bigint, a: bigint): bigint {
  return (v + a - 1n) / a * a;
}

/** Bytes of an ECAM window: 1 MiB per bus. */
export function ecamSize(e: ResolvedEcam): bigint {
  return BigInt(e.busEnd - e.busStart + 1) * MiB;
}

/**
 * Whether the hole takes a memslot of its own: under `shadow`, the read-only all-ones
 * window over ECAM. A machine's memslots are its RAM ranges, then that one.
 */
export function hasShadowSlot(hole: ResolvedHole | null): boolean {
  return hole !== null && hole.ecam !== null && hole.strategy === "shadow";
}

/** How many memslots the machine's Plan holds (see hasShadowSlot). */
export function memslotCount(ram: RamRange[], hole: ResolvedHole | null): number {
  return ram.length + (hasShadowSlot(hole) ? 1 : 0);
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

/** The MMIO pages of placed devices (virtio-mmio), as [base, end) pairs. */
export function deviceMmio(devices: readonly ResolvedDevice[]): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const d of devices) {
    if (d.mmio?.base != null) out.push([d.mmio.base, d.mmio.base + d.mmio.size]);
  }
  return out;
}

/**
 * The BAR windows of a hole: mem32 is the largest part of the hole below the IOAPIC
 * outside ECAM, the platform regions and the devices' MMIO pages (`devices`, as placed);
 * mem64 is 64 GiB from the first 1 GiB boundary above RAM and 4 GiB; io is the fixed PCI
 * I/O window.
 */
export function barWindows(
  ram: RamRange[],
  hole: ResolvedHole,
  devices: readonly ResolvedDevice[] = [],
): BarWindows {
  const e = hole.ecam;
  const used: [bigint, bigint][] = PLATFORM_REGIONS.map((p) => [p.base, p.base + p.size]);
  used.push([IOAPIC_BASE, FOUR_GIB]);
  if (e) used.push([e.base, e.base + ecamSize(e)]);
  used.push(...deviceMmio(devices));
  const gap = largestGap(hole.base, hole.base + hole.size, used) ?? [hole.base, hole.base];
  const ramTop = ram.reduce((mx, r) => (r.base + r.size > mx ? r.base + r.size : mx), FOUR_GIB);
  const m64 = alignUp(ramTop, GiB);
  return {
    mem32: { base: gap[0], size: gap[1] - gap[0] },
    mem64: m64 + MMIO64_SIZE <= BigInt(MAX_GUEST_PHYS) ? { base: m64, size: MMIO64_SIZE } : null,
    io: { base: BigInt(PCI_IO_WINDOW.base), size: BigInt(PCI_IO_WINDOW.size) },
  };
}

export interface BarPlacement {
  /** The address of every BAR that fits. */
  at: Map<ResolvedBar, bigint>;
  /** BARs that do not fit in their window (or have none), in placement order. */
  misfits: { f: ResolvedPci; b: ResolvedBar; window: Window | null }[];
}

/**
 * Firmware-like BAR placement: per window, BARs sorted by size (largest first), each
 * naturally aligned, packed upwards from the window base. Largest-first keeps the packing
 * gap-free, as SeaBIOS and EDK2 do.
 */
export function placeBars(pci: ResolvedPci[], windows: BarWindows): BarPlacement {
  const placement: BarPlacement = { at: new Map(), misfits: [] };
  const all: { f: ResolvedPci; b: ResolvedBar }[] = [];
  for (const f of pci) for (const b of f.bars) all.push({ f, b });
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
    const wBase = w?.base ?? 0n;
    const wEnd = wBase + (w?.size ?? 0n);
    let cur = wBase;
    for (const { f, b } of bars) {
      const at = alignUp(cur, b.size);
      if (!w || at + b.size > wEnd) {
        placement.misfits.push({ f, b, window: w });
        continue;
      }
      placement.at.set(b, at);
      cur = at + b.size;
    }
  }
  return placement;
}

export interface MmioPlacement {
  /** The devices, each virtio-mmio one with its page and IRQ filled in where they fit. */
  devices: ResolvedDevice[];
  /** Devices that found no free page in the window, or no free IRQ line. */
  misfits: { device: ResolvedDevice; what: "address" | "irq" }[];
}

/**
 * Where virtio-mmio devices without an `address` or `irq` go: the next free 4 KiB page of
 * VIRTIO_MMIO_WINDOW (not under RAM, the ECAM window or a page written explicitly), and the
 * first IOAPIC line no device, PCI function or the platform uses, from VIRTIO_MMIO_ISA_IRQS,
 * then, when the machine has ACPI (which tells the guest about lines above 15),
 * VIRTIO_MMIO_ACPI_IRQS. In device order, so a Plan is stable.
 */
export function placeVirtioMmio(
  devices: readonly ResolvedDevice[],
  pci: readonly ResolvedPci[],
  ram: readonly RamRange[],
  hole: ResolvedHole | null,
  acpi: boolean,
): MmioPlacement {
  const taken: [bigint, bigint][] = deviceMmio(devices);
  for (const r of ram) taken.push([r.base, r.base + r.size]);
  if (hole?.ecam) taken.push([hole.ecam.base, hole.ecam.base + ecamSize(hole.ecam)]);
  const irqs = new Set<number>(Object.keys(PLATFORM_IRQS).map(Number));
  if (acpi) irqs.add(ACPI_SCI_IRQ);
  for (const d of devices) if (d.irq !== null) irqs.add(d.irq);
  for (const f of pci) if (f.irq !== null) irqs.add(f.irq);
  const lines = acpi ? [...VIRTIO_MMIO_ISA_IRQS, ...VIRTIO_MMIO_ACPI_IRQS] : VIRTIO_MMIO_ISA_IRQS;
  const w = VIRTIO_MMIO_WINDOW;
  let next = w.base;
  const placement: MmioPlacement = { devices: [], misfits: [] };
  for (const d of devices) {
    if (!d.mmio) {
      placement.devices.push(d);
      continue;
    }
    let base = d.mmio.base;
    if (base === null) {
      const size = d.mmio.size;
      const clash = (at: bigint) => taken.some(([b, e]) => at < e && b < at + size);
      while (next + size <= w.base + w.size && clash(next)) next += size;
      if (next + size <= w.base + w.size) {
        base = next;
        taken.push([base, base + size]);
        next += size;
      } else placement.misfits.push({ device: d, what: "address" });
    }
    let irq = d.irq;
    if (irq === null) {
      irq = lines.find((l) => !irqs.has(l)) ?? null;
      if (irq === null) placement.misfits.push({ device: d, what: "irq" });
      else irqs.add(irq);
    }
    placement.devices.push({ ...d, mmio: { ...d.mmio, base }, irq });
  }
  return placement;
}

/**
 * `virtio_mmio.device=SIZE@ADDR:IRQ` for each virtio-mmio device: how Linux learns of them
 * without ACPI (Firecracker's way); lowering appends it to the command line of a pvh or
 * linux boot that has no ACPI tables (with ACPI, the DSDT describes them).
 */
export function virtioMmioCmdline(devices: readonly ResolvedDevice[]): string {
  return devices
    .filter((d) => d.virtio && d.mmio?.base != null && d.irq !== null)
    .map((d) => {
      const kib = Number(VIRTIO_MMIO_SIZE / 1024n);
      return `virtio_mmio.device=${kib}K@0x${d.mmio!.base!.toString(16)}:${d.irq}`;
    })
    .join(" ");
}

/** The command line a boot ends up with: the machine's, plus the virtio-mmio devices. */
export function finalCmdline(
  boot: ResolvedBoot,
  devices: readonly ResolvedDevice[],
  acpi: boolean,
): string {
  if (boot.protocol === "flat" || acpi) return boot.cmdline;
  const extra = virtioMmioCmdline(devices);
  if (extra === "") return boot.cmdline;
  return boot.cmdline === "" ? extra : `${boot.cmdline} ${extra}`;
}
