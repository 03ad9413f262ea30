/**
 * The PCI hole: its range (below 4 GiB, page aligned), its strategy (`--hole-strategy`
 * wins over the file), and its ECAM window (an inclusive bus range; `buses auto` is the
 * buses the machine's PCI functions use, from bus 0; aligned as PCIe requires: see
 * ecamAlignment).
 */
import type * as A from "../ast.ts";
import type { Fix } from "../diagnostics/types.ts";
import { type Diags, error } from "../diagnostics/make.ts";
import { type EvalContext, evalExpr, hex, humanSize } from "../program.ts";
import { FOUR_GIB, MiB, PLATFORM_REGIONS } from "../specs.ts";
import type { HoleStrategy } from "../../plan/types.ts";
import type { CheckOptions, ResolvedEcam, ResolvedHole, ResolvedPci } from "./model.ts";
import type { Merged } from "./merge.ts";
import { alignUp, checkPage, evalEnum, evalRange } from "./values.ts";

/** The hole without its ECAM window (resolveEcam adds it once the PCI functions are known). */
export function resolveHole(
  m: Merged,
  ctx: EvalContext,
  opts: CheckOptions,
  diags: Diags,
): ResolvedHole | null {
  if (!m.hole) return null;
  const node = m.hole.node;
  const r = evalRange(node.range, ctx, "the PCI hole");
  let strategy: HoleStrategy = "shadow";
  if (m.hole.strategy) {
    const s = evalEnum(m.hole.strategy.value, ["trap", "shadow"] as const, ctx, "hole strategy");
    if (s) strategy = s;
  }
  if (opts.holeStrategy) strategy = opts.holeStrategy;
  if (!r) return null;
  const end = r.base + r.size;
  if (end > FOUR_GIB) {
    diags.push(
      error(
        "E0304",
        `the PCI hole ${hex(r.base)} .. ${hex(end)} reaches above 4 GiB`,
        node.range.span,
        "the 32-bit PCI hole lies below 4 GiB, e.g. `pci_hole 0xC000_0000 .. 4 GiB`",
      ),
    );
    return null;
  }
  checkPage(r.base, node.range.left.span, "the PCI hole start", diags, node.range.left);
  checkPage(
    end,
    node.range.right.span,
    "the PCI hole end",
    diags,
    node.range.form === "to" ? node.range.right : undefined,
  );
  return { base: r.base, size: r.size, span: node.range.span, strategy, ecam: null };
}

/**
 * The hole's ECAM window, or null when it has none or it is invalid (reported). `pci`:
 * the machine's resolved PCI functions, whose highest bus `buses auto` ends at.
 */
export function resolveEcam(
  m: Merged,
  pci: ResolvedPci[],
  hole: ResolvedHole | null,
  ctx: EvalContext,
  diags: Diags,
): ResolvedEcam | null {
  const e = m.hole?.ecam;
  if (!e) return null;
  const base = evalExpr(e.base, ctx);
  let busStart = 0;
  let busEnd = 255;
  if (e.buses?.kind === "Auto") {
    // Narrowed to the buses in use (at least bus 0).
    busEnd = pci.reduce((mx, f) => Math.max(mx, f.bus), 0);
  } else if (e.buses) {
    const l = evalExpr(e.buses.left, ctx);
    const rr = evalExpr(e.buses.right, ctx);
    if (l === null || rr === null) return null;
    // Bus ranges are inclusive (`0..255`), unlike address ranges.
    const last = e.buses.form === "to" ? rr : l + rr - 1n;
    if (l > 255n || last > 255n || last < l) {
      diags.push(
        error(
          "E0210",
          `invalid bus range ${l}..${last}`,
          e.buses.span,
          "buses are numbered 0..255 and the range is inclusive: `buses 0..255`",
        ),
      );
      return null;
    }
    busStart = Number(l);
    busEnd = Number(last);
  }
  if (base === null) return null;
  if (base % MiB !== 0n) {
    const up = alignUp(base, MiB);
    diags.push(
      error(
        "E0205",
        `the ECAM window at ${hex(base)} is not aligned to 1 MiB`,
        e.base.span,
        `each bus takes 1 MiB of ECAM, so the window starts on a 1 MiB boundary; use ${hex(up)}`,
        [],
        e.base.kind === "Number"
          ? [{ title: `round up to ${hex(up)}`, span: e.base.span, replacement: hex(up) }]
          : undefined,
      ),
    );
    return null;
  }
  if (!checkEcamAlignment(e, base, busStart, busEnd, pci, hole, diags)) return null;
  return { base, busStart, busEnd, span: e.span };
}

/**
 * What PCIe asks of an ECAM window (Base Specification, "Enhanced Configuration Access
 * Mechanism"): a host bridge decodes the bus number from n address bits above bit 20
 * (1 ≤ n ≤ 8), so it serves buses 0 .. 2^n - 1 from a region of 2^(n+20) bytes aligned to
 * its own size. The region always starts at bus 0 of the segment: with a partial bus
 * range (MCFG's start bus above 0) the window vmdesc declares begins `busStart` MiB into
 * it, and the MCFG base the runtime writes is that region's start (runtime/boot/acpi).
 * Linux does not check the alignment itself; it computes bus b's address as MCFG base +
 * (b << 20), which is only what the hardware rule promises when the base is aligned.
 */
export function ecamAlignment(busEnd: number): { bits: number; size: bigint } {
  let bits = 1;
  while ((1 << bits) <= busEnd) bits++;
  return { bits, size: MiB << BigInt(bits) };
}

/** E0205 when the ECAM region (from bus 0) is not aligned to its size; true when it is. */
function checkEcamAlignment(
  e: A.Ecam,
  base: bigint,
  busStart: number,
  busEnd: number,
  pci: ResolvedPci[],
  hole: ResolvedHole | null,
  diags: Diags,
): boolean {
  const { size: align } = ecamAlignment(busEnd);
  const offset = BigInt(busStart) * MiB; // bus 0 sits this far below the window
  const region = base - offset;
  if (region >= 0n && region % align === 0n) return true;
  const buses = `buses ${busStart}..${busEnd}`;
  const where = busStart === 0
    ? `the ECAM window at ${hex(base)} (${buses})`
    : `the ECAM window at ${hex(base)} (${buses}, so bus 0 at ${hex(region < 0n ? 0n : region)})`;
  // Aligned bases near this one that keep the whole window inside the hole and clear of
  // the platform's fixed regions: with one such base the fix is certain.
  const size = BigInt(busEnd - busStart + 1) * MiB;
  const fits = (b: bigint) =>
    hole !== null && b >= hole.base && b + size <= hole.base + hole.size &&
    PLATFORM_REGIONS.every((p) => b + size <= p.base || p.base + p.size <= b);
  const down = region < 0n ? -1n : region / align * align + offset;
  const up = (region < 0n ? 0n : (region / align + 1n) * align) + offset;
  const candidates = [down, up].filter((b) => b >= 0n && fits(b));
  const best = candidates.sort((a, b) => {
    const da = a > base ? a - base : base - a;
    const db = b > base ? b - base : base - b;
    return da < db ? -1 : da > db ? 1 : 0;
  })[0];
  // Fewer buses need a smaller alignment: the most this base allows, when the functions
  // fit in them.
  let narrow: number | null = null;
  for (let end = busEnd - 1; end >= busStart; end--) {
    const a = ecamAlignment(end).size;
    if (region >= 0n && region % a === 0n) {
      narrow = end;
      break;
    }
  }
  const usedEnd = pci.reduce((mx, f) => Math.max(mx, f.bus), busStart);
  const narrowHint = narrow !== null && narrow >= usedEnd && e.buses?.kind === "Range"
    ? `, or keep the base and narrow the window to \`buses ${busStart}..${narrow}\``
    : "";
  const fixes: Fix[] | undefined = best !== undefined && e.base.kind === "Number"
    ? [{ title: `move the window to ${hex(best)}`, span: e.base.span, replacement: hex(best) }]
    : undefined;
  const use = best !== undefined
    ? `use ${hex(best)}`
    : `move it to a multiple of ${humanSize(align)}${busStart ? ` plus ${busStart} MiB` : ""}`;
  diags.push(
    error(
      "E0205",
      `${where} is not aligned to ${humanSize(align)}`,
      e.base.span,
      busEnd === 0
        ? `PCIe decodes the bus number from at least one address bit above bit 20, so even a one-bus window lies in a 2 MiB region that starts at bus 0 on a 2 MiB boundary; ${use}`
        : `PCIe decodes the bus number from the address bits above bit 20, so a window reaching bus ${busEnd} lies in the ${
          humanSize(align)
        } region of buses 0..${Number(align / MiB) - 1}, which starts on a ${
          humanSize(align)
        } boundary; ${use}${narrowHint}`,
      [],
      fixes,
    ),
  );
  return false;
}
