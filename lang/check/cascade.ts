/**
 * Follow-on diagnostics: a diagnostic caused by an earlier one is not reported. Where error
 * recovery skipped text in a machine or in a base it extends (`Merged.lost`), a check that
 * something is missing says nothing: the machine has nothing to boot (E0402), no memory or
 * no RAM at 0 (E0401), no serial device (W0002), or a block lacks a required property that
 * its skipped text may have held (E0303).
 *
 * The other follow-ons are avoided where they arise: a misspelt property is not reported
 * missing again (lang/check/values.ts, ram.ts), a broken serial device is not "no serial
 * device" (devices.ts), and a constant whose definition failed is quiet where it is used
 * (lang/program.ts).
 */
import type { Diagnostic, Span } from "../diagnostics/types.ts";
import type { Merged } from "./merge.ts";

/** Codes that say something is missing from the whole machine. */
const MISSING_FROM_MACHINE = new Set(["E0402", "E0401", "W0002"]);

/** Drops, from diags[start..], what the text lost to a syntax error may explain. */
export function quietFollowOns(diags: Diagnostic[], start: number, m: Merged): void {
  if (m.lost.length === 0) return;
  const inside = (outer: Span, inner: Span) =>
    outer.file === inner.file && outer.start <= inner.start && inner.end <= outer.end;
  const kept = diags.slice(start).filter((d) => {
    if (MISSING_FROM_MACHINE.has(d.code)) return false;
    if (d.code === "E0303" && d.span) return !m.lost.some((l) => inside(d.span!, l));
    return true;
  });
  diags.length = start;
  for (const d of kept) diags.push(d);
}
