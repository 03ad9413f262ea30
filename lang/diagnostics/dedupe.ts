import type { Diagnostic } from "./types.ts";

/**
 * Drops repeated diagnostics (same code, message and span): a shared base machine checked
 * for each machine that extends it, or one file given twice, reports each problem once.
 */
export function dedupe(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const k = `${d.code}|${d.span?.file}|${d.span?.start}|${d.span?.end}|${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
