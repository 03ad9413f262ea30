/**
 * Cross-checks of the resolved sections against each other and the platform: RAM, the
 * hole and the fixed platform regions do not overlap and stay in the 52-bit space (E0201,
 * E0212), RAM covers the first MiB (E0401), ECAM lies in the hole (E0206) and holds every
 * function's bus (E0215, W0004, W0001), I/O ports and IRQs are not claimed twice (E0202,
 * E0203), and virtio-mmio pages overlap nothing (E0201) and found a place and a line
 * (E0201, E0203). Overlaps are found by sorting then sweeping, so each check is n log n.
 */
import type { Label, Span } from "../diagnostics/types.ts";
import { type Diags, error, warning } from "../diagnostics/make.ts";
import { hex } from "../program.ts";
import {
  ACPI_SCI_IRQ,
  ACPI_SLEEP_PORTS,
  EXCESS_BUSES,
  HIGH_MEMORY,
  LARGE_ECAM_BUSES,
  MiB,
  PCI_CONFIG_PORTS,
  PCI_IO_WINDOW,
  PLATFORM_IRQS,
  PLATFORM_PORTS,
  PLATFORM_REGIONS,
  PROBES_PER_BUS,
} from "../specs.ts";
import { MAX_GUEST_PHYS } from "../../plan/types.ts";
import type {
  PortClaim,
  RamRange,
  ResolvedBoot,
  ResolvedDevice,
  ResolvedHole,
  ResolvedPci,
} from "./model.ts";
import type { Merged } from "./merge.ts";
import { barWindows, ecamSize, type MmioPlacement } from "../placement.ts";
import { VIRTIO_MMIO_WINDOW } from "../specs.ts";
import { ecamAlignment } from "./hole.ts";

const MAX_PHYS = BigInt(MAX_GUEST_PHYS);

interface Region {
  base: bigint;
  end: bigint;
  what: string;
  span: Span | null;
}

function overlapLabel(r: Region): Label[] {
  return r.span ? [{ span: r.span, message: `${r.what} is here` }] : [];
}

/** RAM, hole and platform regions must not overlap; ECAM must sit inside the hole. */
export function checkLayout(ram: RamRange[], hole: ResolvedHole | null, diags: Diags) {
  const regions: Region[] = ram.map((r) => ({
    base: r.base,
    end: r.base + r.size,
    what: `RAM ${r.name}`,
    span: r.span,
  }));
  if (hole) {
    regions.push({
      base: hole.base,
      end: hole.base + hole.size,
      what: "the PCI hole",
      span: hole.span,
    });
  }
  for (const r of regions) {
    beyondPhysical(r, diags);
  }
  sweep(regions, (a, b) =>
    diags.push(
      error(
        "E0201",
        `${b.what} (${hex(b.base)} .. ${hex(b.end)}) overlaps ${a.what} (${hex(a.base)} .. ${
          hex(a.end)
        })`,
        b.span,
        "move or shrink one of them; with `memory`, RAM is placed around the hole for you",
        overlapLabel(a),
      ),
    ));
  // RAM may not cover the fixed platform MMIO (the hole normally contains it).
  for (const p of PLATFORM_REGIONS) {
    const pend = p.base + p.size;
    for (const r of ram) {
      if (r.base < pend && p.base < r.base + r.size) {
        diags.push(
          error(
            "E0201",
            `RAM ${r.name} (${hex(r.base)} .. ${hex(r.base + r.size)}) overlaps ${p.name} at ${
              hex(p.base)
            }`,
            r.span,
            "keep RAM below 0xC000_0000 or above 4 GiB; the platform uses 0xFEC0_0000 .. 4 GiB",
          ),
        );
      }
    }
  }
  if (ram.length && !ram.some((r) => r.base === 0n && r.size >= BigInt(HIGH_MEMORY))) {
    diags.push(
      error(
        "E0401",
        "no RAM covers 0x0 .. 0x10_0000, where boot data goes",
        ram[0].span,
        "start RAM at 0 with at least 1 MiB (the default split does this)",
      ),
    );
  }
  if (hole?.ecam) {
    const e = hole.ecam;
    const end = e.base + ecamSize(e);
    if (e.base < hole.base || end > hole.base + hole.size) {
      diags.push(
        error(
          "E0206",
          `the ECAM window ${hex(e.base)} .. ${hex(end)} (${
            e.busEnd - e.busStart + 1
          } buses) is not inside the PCI hole`,
          e.span,
          "move `ecam` inside the hole or narrow its bus range",
          [{
            span: hole.span,
            message: `the hole is ${hex(hole.base)} .. ${hex(hole.base + hole.size)}`,
          }],
        ),
      );
      return;
    }
    // One diagnostic for the window, however many platform regions it covers, with a
    // place that is free inside this hole.
    const hits = PLATFORM_REGIONS.filter((p) => e.base < p.base + p.size && p.base < end);
    if (hits.length) {
      const names = hits.map((p) => `${p.name} at ${hex(p.base)}`);
      const list = names.length === 1
        ? names[0]
        : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
      const free = freeEcamBase(hole, e);
      diags.push(
        error(
          "E0201",
          `the ECAM window ${hex(e.base)} .. ${hex(end)} overlaps ${list}`,
          e.span,
          free !== null
            ? `the platform uses 0xFEC0_0000 .. 4 GiB; put ECAM lower in the hole, e.g. \`ecam ${
              hex(free)
            }\``
            : `the platform uses 0xFEC0_0000 .. 4 GiB and this hole has no room below it for ${
              e.busEnd - e.busStart + 1
            } buses: narrow the bus range or start the hole lower`,
        ),
      );
    }
  }
}

/**
 * The highest base for `e`'s window inside the hole, aligned as PCIe wants (E0205), that
 * clears the platform's regions; null when there is none.
 */
function freeEcamBase(hole: ResolvedHole, e: ResolvedHole["ecam"] & object): bigint | null {
  const size = ecamSize(e);
  const offset = BigInt(e.busStart) * MiB;
  const align = ecamAlignment(e.busEnd).size;
  const holeEnd = hole.base + hole.size;
  const below = PLATFORM_REGIONS.reduce(
    (lo, p) => (p.base < lo && p.base >= hole.base ? p.base : lo),
    holeEnd,
  );
  const top = below - size - offset; // the region start must be at or below this
  if (top < 0n) return null;
  const base = top / align * align + offset;
  return base >= hole.base && base + size <= below ? base : null;
}

/** Calls onOverlap(earlier, later) for each region overlapping one before it (sorted sweep). */
function sweep<T extends { base: bigint; end: bigint }>(
  items: T[],
  onOverlap: (a: T, b: T) => void,
) {
  const sorted = [...items].sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  let active: T | null = null;
  for (const it of sorted) {
    if (active && it.base < active.end) onOverlap(active, it);
    if (!active || it.end > active.end) active = it;
  }
}

export function checkEcamUse(
  hole: ResolvedHole | null,
  pci: ResolvedPci[],
  m: Merged,
  diags: Diags,
) {
  const e = hole?.ecam;
  if (!hole || !e) return;
  const explicit = m.hole?.ecam?.buses?.kind === "Range";
  for (const f of pci) {
    if (f.bus < e.busStart || f.bus > e.busEnd) {
      diags.push(
        error(
          "E0215",
          `PCI function ${f.bdf} is on bus ${f.bus}, outside the ECAM buses ${e.busStart}..${e.busEnd}`,
          f.span,
          "widen `buses` or move the function",
          [
            { span: e.span, message: "the ECAM bus range" },
          ],
        ),
      );
    }
  }
  const buses = e.busEnd - e.busStart + 1;
  const used = new Set(pci.map((f) => f.bus)).size || 1;
  const maxUsed = pci.reduce((mx, f) => Math.max(mx, f.bus), e.busStart);
  const excess = e.busEnd - maxUsed;
  if (hole.strategy === "trap" && explicit && excess >= EXCESS_BUSES && buses >= 4 * used) {
    diags.push(
      warning(
        "W0004",
        `the ECAM window declares ${buses} buses but functions use ${used}`,
        m.hole!.ecam!.buses!.span,
        `a guest scanning every bus makes ${
          excess * PROBES_PER_BUS
        } extra config probes (${excess} buses × 32 devices, function 0 of each), each a VM exit under \`trap\`; use \`buses auto\` or \`buses ${e.busStart}..${maxUsed}\``,
        [],
        [{
          title: `narrow to ${e.busStart}..${maxUsed}`,
          span: m.hole!.ecam!.buses!.span,
          replacement: `${e.busStart}..${maxUsed}`,
        }],
      ),
    );
  } else if (hole.strategy === "trap" && buses >= LARGE_ECAM_BUSES) {
    diags.push(
      warning(
        "W0001",
        `the \`trap\` strategy with a ${buses}-bus ECAM window makes every config probe exit`,
        e.span,
        `a full scan makes ${
          buses * PROBES_PER_BUS
        } config probes (${buses} buses × 32 devices, function 0 of each), each a VM exit to the VMM; \`strategy shadow\` answers absent functions without exits`,
      ),
    );
  }
}

export function checkPorts(
  devices: ResolvedDevice[],
  hole: ResolvedHole | null,
  acpi: boolean,
  diags: Diags,
) {
  const claims: (PortClaim & { end: number })[] = [];
  for (const d of devices) for (const p of d.ports) claims.push({ ...p, end: p.base + p.size });
  for (const p of PLATFORM_PORTS) {
    claims.push({ base: p.base, size: p.size, end: p.base + p.size, span: null, owner: p.name });
  }
  if (acpi) {
    // Lowering puts the sleep registers there on every machine with ACPI tables.
    const s = ACPI_SLEEP_PORTS;
    claims.push({ ...s, end: s.base + s.size, span: null, owner: "the ACPI sleep registers" });
  }
  if (hole) {
    claims.push({
      ...PCI_CONFIG_PORTS,
      end: PCI_CONFIG_PORTS.base + PCI_CONFIG_PORTS.size,
      span: null,
      owner: "the PCI host bridge (0xCF8..0xCFF)",
    });
    claims.push({
      ...PCI_IO_WINDOW,
      end: PCI_IO_WINDOW.base + PCI_IO_WINDOW.size,
      span: null,
      owner: "the PCI I/O BAR window (0xC000..0xFFFF)",
    });
  }
  const asBig = claims.map((c) => ({ ...c, base: BigInt(c.base), end: BigInt(c.end), c }));
  sweep(asBig, (a, b) => {
    // Report at whichever claim the user wrote (platform ones have no span).
    const [user, other] = b.c.span ? [b.c, a.c] : [a.c, b.c];
    if (!user.span) return;
    diags.push(
      error(
        "E0202",
        `I/O ports ${hex(user.base)}..${
          hex(user.base + user.size - 1)
        } of ${user.owner} overlap ${other.owner} (${hex(other.base)}..${
          hex(other.base + other.size - 1)
        })`,
        user.span,
        "move one of them to free ports",
        other.span ? [{ span: other.span, message: `${other.owner} is here` }] : [],
      ),
    );
  });
}

export function checkIrqs(
  devices: ResolvedDevice[],
  pci: ResolvedPci[],
  acpi: boolean,
  boot: ResolvedBoot | null,
  diags: Diags,
) {
  // ISA-style (edge) interrupts cannot be shared; PCI INTx lines may share among themselves.
  const owners = new Map<number, { who: string; span: Span | null }>();
  for (const [g, who] of Object.entries(PLATFORM_IRQS)) owners.set(Number(g), { who, span: null });
  if (acpi && boot && boot.protocol !== "flat") {
    owners.set(ACPI_SCI_IRQ, { who: "the ACPI SCI", span: null });
  }
  const report = (irq: number, who: string, span: Span, prev: { who: string; span: Span | null }) =>
    diags.push(
      error(
        "E0203",
        `${who} uses IRQ ${irq}, already taken by ${prev.who}`,
        span,
        "give it another IRQ",
        prev.span ? [{ span: prev.span, message: `${prev.who} uses it here` }] : [],
      ),
    );
  for (const d of devices) {
    if (d.irq === null) continue;
    const prev = owners.get(d.irq);
    const span = d.irqSpan ?? d.span;
    if (prev) report(d.irq, `device \`${d.id}\``, span, prev);
    else owners.set(d.irq, { who: `device \`${d.id}\``, span });
  }
  const pciOwners = new Map<number, true>();
  for (const f of pci) {
    if (f.irq === null) continue;
    const prev = owners.get(f.irq);
    if (prev && !pciOwners.has(f.irq)) {
      report(f.irq, `PCI function ${f.bdf}`, f.irqSpan ?? f.span, prev);
    } else if (!prev) {
      owners.set(f.irq, { who: `PCI function ${f.bdf}`, span: f.irqSpan ?? f.span });
      pciOwners.set(f.irq, true);
    }
  }
}

/** E0212 when `r` ends beyond the 52-bit physical address space; whether it does. */
function beyondPhysical(r: Region, diags: Diags): boolean {
  if (r.end <= MAX_PHYS) return false;
  diags.push(
    error(
      "E0212",
      `${r.what} ends at ${hex(r.end)}, beyond the 52-bit physical address space`,
      r.span,
      "guest-physical addresses stop at 0x10_0000_0000_0000 (4 PiB)",
    ),
  );
  return true;
}

/**
 * Virtio-mmio pages: placed (E0201 when the window is full, E0203 when no line is free),
 * inside the 52-bit space (E0212), and overlapping neither RAM, the ECAM window, the fixed
 * platform regions, the 64-bit BAR window nor each other (E0201).
 */
export function checkMmioDevices(
  placed: MmioPlacement,
  ram: RamRange[],
  hole: ResolvedHole | null,
  diags: Diags,
) {
  for (const { device: d, what } of placed.misfits) {
    if (what === "address") {
      const w = VIRTIO_MMIO_WINDOW;
      diags.push(
        error(
          "E0201",
          `no free page left for virtio-mmio device \`${d.id}\` in ${hex(w.base)} .. ${
            hex(w.base + w.size)
          }`,
          d.span,
          "give it an `address` outside RAM and the PCI hole's windows",
        ),
      );
    } else {
      diags.push(
        error(
          "E0203",
          `no free interrupt line left for virtio-mmio device \`${d.id}\``,
          d.span,
          "give it an `irq` no other device uses; with ACPI, lines 16..23 are available too",
        ),
      );
    }
  }
  const regions: Region[] = [];
  for (const d of placed.devices) {
    if (d.mmio?.base == null) continue;
    const r = {
      base: d.mmio.base,
      end: d.mmio.base + d.mmio.size,
      what: `virtio-mmio device \`${d.id}\``,
      span: d.mmio.span,
    };
    if (!beyondPhysical(r, diags)) regions.push(r);
  }
  if (regions.length === 0) return;
  const others: Region[] = ram.map((x) => ({
    base: x.base,
    end: x.base + x.size,
    what: `RAM ${x.name}`,
    span: x.span,
  }));
  if (hole?.ecam) {
    const e = hole.ecam;
    others.push({ base: e.base, end: e.base + ecamSize(e), what: "the ECAM window", span: e.span });
  }
  for (const p of PLATFORM_REGIONS) {
    others.push({ base: p.base, end: p.base + p.size, what: p.name, span: null });
  }
  const m64 = hole ? barWindows(ram, hole).mem64 : null;
  if (m64) {
    others.push({
      base: m64.base,
      end: m64.base + m64.size,
      what: "the 64-bit BAR window",
      span: null,
    });
  }
  const report = (a: Region, b: Region) =>
    diags.push(
      error(
        "E0201",
        `${b.what} (${hex(b.base)} .. ${hex(b.end)}) overlaps ${a.what} (${hex(a.base)} .. ${
          hex(a.end)
        })`,
        b.span,
        "move it with `address`, or leave `address` out and vmdesc places it",
        overlapLabel(a),
      ),
    );
  sweep(regions, report);
  for (const r of regions) {
    for (const o of others) if (r.base < o.end && o.base < r.end) report(o, r);
  }
}
