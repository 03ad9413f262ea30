/**
 * The PCI hole: its range (below 4 GiB, page aligned), its strategy (`--hole-strategy`
 * wins over the file), and its ECAM window (1 MiB aligned, an inclusive bus range; `buses
 * auto` is the buses the machine's PCI functions use, from bus 0).
 */
import { type Diags, error } from "../diagnostics/make.ts";
import { type EvalContext, evalExpr, hex } from "../program.ts";
import { FOUR_GIB, MiB } from "../specs.ts";
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
  return { base, busStart, busEnd, span: e.span };
}
