/**
 * A Plan's guest-physical memory map as an SVG picture. Pure (returns the text).
 *
 * The scale is broken on purpose: every stretch between two region edges gets a height
 * that grows with the logarithm of its size (so a 4 KiB LAPIC page and 3 GiB of RAM are
 * both legible), and stretches nobody uses collapse into a short "unmapped" band.
 * High addresses are at the top, as in the usual memory-map drawings. Regions that
 * nest (ECAM inside the hole, BARs inside the MMIO window) stand in lanes to the right.
 */
import type { Plan } from "../plan/types.ts";
import { addr, size as human } from "./plan_table.ts";

type Kind =
  | "ram"
  | "hole"
  | "ecam"
  | "config"
  | "window"
  | "bar"
  | "chip"
  | "device"
  | "reserved"
  | "slot";

interface Region {
  base: number;
  size: number;
  name: string;
  kind: Kind;
  notes: string[];
  lane: number;
}

const STYLE: Record<Kind, { fill: string; stroke: string; legend: string }> = {
  ram: { fill: "#b2f2bb", stroke: "#2b8a3e", legend: "RAM (memslot)" },
  hole: { fill: "#f1f3f5", stroke: "#868e96", legend: "PCI hole" },
  ecam: { fill: "#ffd8a8", stroke: "#d9480f", legend: "ECAM (PCIe config)" },
  config: { fill: "#fff4e6", stroke: "#e8590c", legend: "a function's config page" },
  window: { fill: "#e7f5ff", stroke: "#1c7ed6", legend: "BAR window" },
  bar: { fill: "#a5d8ff", stroke: "#1864ab", legend: "PCI BAR" },
  chip: { fill: "#e5dbff", stroke: "#6741d9", legend: "IOAPIC / LAPIC" },
  device: { fill: "#c3fae8", stroke: "#0c8599", legend: "device MMIO" },
  reserved: { fill: "#ffe3e3", stroke: "#c92a2a", legend: "reserved" },
  slot: { fill: "#fff3bf", stroke: "#e67700", legend: "other memslot" },
};

const MIN_H = 22; // px for the smallest stretch (one line of text fits)
const PER_DOUBLING = 10; // px added each time a stretch doubles beyond 4 KiB
const GAP_H = 30; // px for an unmapped stretch, whatever its size
const LANE_W = 250;
const AXIS_W = 178;
const PAD = 24;
const TOP = 78;

function stretchHeight(bytes: number): number {
  const doublings = Math.max(0, Math.log2(bytes / 4096));
  return Math.round(MIN_H + PER_DOUBLING * doublings);
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** Cuts text that would not fit `width` px at `font` px (average glyph ~0.6 em). */
function fit(text: string, width: number, font: number, mono = false): string {
  const max = Math.floor(width / (font * (mono ? 0.61 : 0.56)));
  return text.length <= max ? text : text.slice(0, Math.max(1, max - 1)) + "…";
}

function collect(plan: Plan): Region[] {
  const regions: Region[] = [];
  const add = (base: number, size: number, name: string, kind: Kind, note?: string) => {
    if (!(size > 0)) return;
    const same = regions.find((r) => r.base === base && r.size === size);
    if (same) {
      // The same range seen from another angle (the ECAM and its shadow memslot): one box.
      if (note && same.notes.some((n) => n.includes("memslot")) && note.includes("memslot")) return;
      if (note) same.notes.push(note);
      else if (!same.name.includes(name)) same.notes.push(name);
      return;
    }
    regions.push({ base, size, name, kind, notes: note ? [note] : [], lane: 0 });
  };
  const h = plan.hole;
  if (h) {
    add(h.base, h.size, "PCI hole", "hole", `strategy ${h.strategy}`);
    if (h.ecam) {
      const e = h.ecam;
      add(
        e.base,
        e.size,
        `ECAM buses ${e.bus_start}..${e.bus_end}`,
        "ecam",
        e.shadow_slot !== null ? `read-only memslot ${e.shadow_slot}` : "trapped",
      );
    }
    add(h.mmio32.base, h.mmio32.size, "MMIO32 window", "window");
    if (h.ecam) {
      // Each present function's 4 KiB config page in the window. Under `shadow` the
      // memslot lists them (the host bridge's included): the only pages that are not the
      // shared all-ones chunk. Under `trap`, where the functions' pages would be.
      const e = h.ecam;
      const slot = plan.memslots.find((m) => m.slot === e.shadow_slot);
      if (slot && slot.backing.kind === "ones_alias") {
        for (const page of slot.backing.present) {
          add(slot.guest_phys + page.offset, 4096, `${page.bdf} config`, "config", "own page");
        }
      } else {
        for (const f of plan.pci) {
          if (f.bus < e.bus_start || f.bus > e.bus_end) continue;
          const off = ((f.bus - e.bus_start) * 32 * 8 + f.device * 8 + f.function) * 4096;
          add(e.base + off, 4096, `${f.bdf} config`, "config", "trapped");
        }
      }
    }

    if (h.mmio64) add(h.mmio64.base, h.mmio64.size, "MMIO64 window", "window");
  }
  for (const m of plan.memslots) {
    const kind: Kind = m.backing.kind === "anonymous" ? "ram" : "slot";
    const note = `memslot ${m.slot}${m.flags.includes("readonly") ? ", read-only" : ""}`;
    add(m.guest_phys, m.size, kind === "ram" ? `RAM ${m.name}` : m.name, kind, note);
  }
  for (const f of plan.pci) {
    for (const b of f.bars) {
      if (b.kind === "io") continue; // I/O ports are not guest-physical memory
      add(
        b.address,
        b.size,
        `${f.bdf} ${f.kind} BAR${b.index}`,
        "bar",
        b.kind + (b.prefetchable ? " pf" : ""),
      );
    }
  }
  for (const d of plan.devices) {
    const name = d.id === d.kind ? d.id : `${d.id} (${d.kind})`;
    for (const r of d.mmio) add(r.base, r.size, name, "device", `claimed by ${d.id}`);
  }
  const pf = plan.platform;
  add(pf.ioapic.base, 4096, "IOAPIC", "chip", `${pf.ioapic.pins} pins`);
  add(pf.lapic_base, 4096, "LAPIC", "chip");
  add(pf.tss_addr, 3 * 4096, "KVM TSS", "reserved");
  add(pf.identity_map_addr, 4096, "KVM identity map", "reserved");
  // e820 holes inside RAM (the BIOS area, ACPI tables) are worth seeing; the ones over the
  // PCI hole repeat what is drawn already.
  const rams = plan.memslots.filter((m) => m.backing.kind === "anonymous");
  for (const e of plan.e820) {
    if (e.type === "ram") continue;
    const inRam = rams.some((m) =>
      e.addr < m.guest_phys + m.size && m.guest_phys < e.addr + e.size
    );
    if (inRam) add(e.addr, e.size, `e820 ${e.type}`, "reserved");
  }
  // Lanes: largest first, each into the first lane where it overlaps nothing.
  const lanes: Region[][] = [];
  const order = [...regions].sort((a, b) => b.size - a.size || a.base - b.base);
  for (const r of order) {
    let lane = 0;
    while (lanes[lane]?.some((o) => r.base < o.base + o.size && o.base < r.base + r.size)) lane++;
    (lanes[lane] ??= []).push(r);
    r.lane = lane;
  }
  return regions;
}

export interface SvgOptions {
  /** Title over the map (default: the machine name). */
  title?: string;
}

export function planSvg(plan: Plan, options: SvgOptions = {}): string {
  const regions = collect(plan);
  const laneCount = Math.max(1, ...regions.map((r) => r.lane + 1));

  // Edges of every region; the stretches between them are the rows of the picture.
  const edges = [...new Set(regions.flatMap((r) => [r.base, r.base + r.size]))].sort((a, b) =>
    a - b
  );
  interface Stretch {
    lo: number;
    hi: number;
    y: number;
    h: number;
    gap: boolean;
  }
  const stretches: Stretch[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const lo = edges[i];
    const hi = edges[i + 1];
    const gap = !regions.some((r) => r.base < hi && lo < r.base + r.size);
    stretches.push({ lo, hi, y: 0, h: gap ? GAP_H : stretchHeight(hi - lo), gap });
  }
  // High addresses at the top.
  let y = TOP;
  for (const s of [...stretches].reverse()) {
    s.y = y;
    y += s.h;
  }
  const mapBottom = y;
  const yOf = (address: number): number => {
    for (const s of stretches) {
      if (address === s.lo) return s.y + s.h;
      if (address === s.hi) return s.y;
    }
    return mapBottom;
  };

  const x0 = PAD + AXIS_W;
  const width = x0 + laneCount * LANE_W + PAD;
  const legendKinds = (Object.keys(STYLE) as Kind[]).filter((k) =>
    regions.some((r) => r.kind === k)
  );
  const legendRows = Math.ceil(legendKinds.length / 3);
  const height = mapBottom + 28 + legendRows * 20 + 30;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
  );
  out.push(`<title>${esc(options.title ?? `${plan.machine}: guest physical memory map`)}</title>`);
  out.push(
    `<defs><pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f8f9fa"/><line x1="0" y1="0" x2="0" y2="8" stroke="#dee2e6" stroke-width="3"/></pattern></defs>`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);

  // Title and a one-line summary.
  const ram = plan.memslots.filter((m) => m.backing.kind === "anonymous").reduce(
    (a, m) => a + m.size,
    0,
  );
  const summary = [
    plan.source ?? null,
    `${plan.cpus.count} vCPU${plan.cpus.count === 1 ? "" : "s"}`,
    `${human(ram)} RAM`,
    plan.hole ? `hole: ${plan.hole.strategy}` : "no PCI hole",
    `${plan.pci.length} PCI function${plan.pci.length === 1 ? "" : "s"}`,
  ].filter((s) => s !== null).join("  ·  ");
  out.push(
    `<text x="${PAD}" y="32" font-size="20" font-weight="bold" fill="#212529">${
      esc(options.title ?? `machine ${plan.machine}`)
    }<tspan dx="8" font-weight="normal" fill="#495057">— guest physical memory map</tspan></text>`,
  );
  out.push(`<text x="${PAD}" y="54" font-size="12" fill="#495057">${esc(summary)}</text>`);

  // Unmapped stretches: a hatched band across every lane with its size.
  for (const s of stretches) {
    if (!s.gap) continue;
    const w = laneCount * LANE_W - 8;
    out.push(`<rect x="${x0}" y="${s.y}" width="${w}" height="${s.h}" fill="url(#hatch)"/>`);
    const zig = (yy: number) => {
      let d = `M ${x0 - 6} ${yy}`;
      for (let x = x0 - 6, k = 0; x < x0 + w + 6; x += 8, k++) {
        d += ` L ${x + 8} ${yy + (k % 2 ? -3 : 3)}`;
      }
      return `<path d="${d}" fill="none" stroke="#adb5bd" stroke-width="1.2"/>`;
    };
    out.push(zig(s.y + 2), zig(s.y + s.h - 2));
    out.push(
      `<text x="${x0 + w / 2}" y="${
        s.y + s.h / 2 + 4
      }" font-size="11" font-style="italic" fill="#868e96" text-anchor="middle">unmapped · ${
        esc(human(s.hi - s.lo))
      } (scale broken)</text>`,
    );
  }

  // Regions, biggest lanes first so the nested boxes draw over their parents' edges.
  for (const r of [...regions].sort((a, b) => a.lane - b.lane)) {
    const st = STYLE[r.kind];
    const top = yOf(r.base + r.size);
    const bottom = yOf(r.base);
    const h = Math.max(2, bottom - top);
    const x = x0 + r.lane * LANE_W;
    const w = LANE_W - 8;
    out.push(
      `<rect x="${x}" y="${top}" width="${w}" height="${h}" rx="3" fill="${st.fill}" stroke="${st.stroke}" stroke-width="1.2"><title>${
        esc(
          `${r.name}: ${addr(r.base)}-${addr(r.base + r.size - 1)} (${human(r.size)})${
            r.notes.length ? "; " + r.notes.join(", ") : ""
          }`,
        )
      }</title></rect>`,
    );
    const tx = x + 8;
    const tw = w - 14;
    const cy = top + h / 2;
    const title = `${r.name} · ${human(r.size)}`;
    const range = `${addr(r.base)} – ${addr(r.base + r.size - 1)}`;
    const note = r.notes.join(", ");
    if (h >= 58 && note) {
      out.push(
        `<text x="${tx}" y="${cy - 10}" font-size="12" font-weight="bold" fill="#212529">${
          esc(fit(title, tw, 12))
        }</text>`,
        `<text x="${tx}" y="${
          cy + 5
        }" font-size="10.5" font-family="DejaVu Sans Mono, Menlo, monospace" fill="#343a40">${
          esc(fit(range, tw, 10.5, true))
        }</text>`,
        `<text x="${tx}" y="${cy + 19}" font-size="10.5" fill="#495057">${
          esc(fit(note, tw, 10.5))
        }</text>`,
      );
    } else if (h >= 40) {
      out.push(
        `<text x="${tx}" y="${cy - 3}" font-size="12" font-weight="bold" fill="#212529">${
          esc(fit(title, tw, 12))
        }</text>`,
        `<text x="${tx}" y="${
          cy + 12
        }" font-size="10.5" font-family="DejaVu Sans Mono, Menlo, monospace" fill="#343a40">${
          esc(fit(range, tw, 10.5, true))
        }</text>`,
      );
    } else if (h >= 14) {
      out.push(
        `<text x="${tx}" y="${cy + 4}" font-size="11" font-weight="bold" fill="#212529">${
          esc(fit(title, tw, 11))
        }</text>`,
      );
    }
  }

  // Address axis: one tick per edge, with the address and, for round values, its size.
  out.push(
    `<line x1="${x0 - 10}" y1="${TOP}" x2="${x0 - 10}" y2="${mapBottom}" stroke="#adb5bd"/>`,
  );
  for (const e of edges) {
    const yy = yOf(e);
    const round = e > 0 && e % (1024 * 1024) === 0 ? `  ${human(e)}` : "";
    out.push(
      `<line x1="${x0 - 14}" y1="${yy}" x2="${
        x0 + laneCount * LANE_W - 8
      }" y2="${yy}" stroke="#ced4da" stroke-width="0.6" stroke-dasharray="2 3"/>`,
      `<text x="${x0 - 18}" y="${
        yy + 4
      }" font-size="10.5" font-family="DejaVu Sans Mono, Menlo, monospace" fill="#343a40" text-anchor="end">${
        esc(addr(e))
      }<tspan dx="6" fill="#868e96">${esc(round.trim())}</tspan></text>`,
    );
  }

  // Legend.
  let ly = mapBottom + 30;
  legendKinds.forEach((k, i) => {
    const col = i % 3;
    const row = Math.floor(i / 3);
    const lx = PAD + col * 200;
    const yy = ly + row * 20;
    out.push(
      `<rect x="${lx}" y="${yy - 10}" width="14" height="12" rx="2" fill="${
        STYLE[k].fill
      }" stroke="${STYLE[k].stroke}"/>`,
      `<text x="${lx + 20}" y="${yy}" font-size="11" fill="#343a40">${esc(STYLE[k].legend)}</text>`,
    );
  });
  ly += legendRows * 20;
  out.push(
    `<text x="${PAD}" y="${
      ly + 4
    }" font-size="10.5" fill="#868e96">Heights grow with log(size), not in proportion; hatched bands are unmapped space drawn short. Ranges are inclusive.</text>`,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}
