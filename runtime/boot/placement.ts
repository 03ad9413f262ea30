/**
 * Where boot loaders put things in guest RAM: the usable ranges of the Plan's e820 map,
 * and "as high as possible below a limit, clear of some ranges" (initrds, for both the
 * Linux protocol and PVH).
 */
import type { E820Entry, Plan } from "../../plan/types.ts";

export const PAGE = 4096;
const MiB = 0x10_0000;

export interface Span {
  base: number;
  /** Exclusive. */
  end: number;
}

/** RAM the guest sees as usable, from the Plan's e820 map, sorted. */
export function usableRam(e820: readonly E820Entry[]): Span[] {
  return e820.filter((e) => e.type === "ram").map((e) => ({ base: e.addr, end: e.addr + e.size }))
    .sort((a, b) => a.base - b.base);
}

/**
 * The highest page-aligned address at or above 1 MiB where `size` bytes fit in usable RAM,
 * end at or below `limit` (exclusive), overlapping none of `avoid`; -1 when none.
 */
export function placeHigh(plan: Plan, size: number, limit: number, avoid: readonly Span[]): number {
  let best = -1;
  for (const r of usableRam(plan.e820)) {
    // Cut the RAM range around every range to avoid.
    let pieces: Span[] = [{ base: r.base, end: Math.min(r.end, limit) }];
    for (const a of avoid) {
      pieces = pieces.flatMap((p) =>
        a.end <= p.base || a.base >= p.end
          ? [p]
          : [{ base: p.base, end: a.base }, { base: a.end, end: p.end }]
      );
    }
    for (const p of pieces) {
      const at = Math.floor((p.end - size) / PAGE) * PAGE;
      if (p.end - p.base >= size && at >= p.base && at >= MiB) best = Math.max(best, at);
    }
  }
  return best;
}
