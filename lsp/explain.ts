/**
 * Long explanations of diagnostic codes for hover: the same sections of
 * docs/diagnostics.md that `vmdesc explain CODE` prints (read by host/explanations.ts).
 */
import { CODES, isKnownCode } from "../plan/codes.ts";
import { explanations } from "../host/explanations.ts";

/** Markdown explaining `code`, or null for an unknown code. */
export function explainCode(code: string): string | null {
  if (!isKnownCode(code)) return null;
  // Without the docs file, hover falls back to the one-line title from codes.ts.
  const doc = explanations().get(code);
  // One heading level down: hover shows it under the diagnostic's own line.
  if (doc) return doc.text.replace(/^## /, "### ").trimEnd();
  const info = CODES[code];
  return `### ${code}: ${info.title}\n\n(${info.severity}) Run \`vmdesc explain ${code}\` for details.`;
}
