/**
 * Long explanations of diagnostic codes for hover: the same sections of
 * docs/diagnostics.md that `vmdesc explain CODE` prints (parsed by cli/explain.ts).
 */
import { CODES, isKnownCode } from "../plan/codes.ts";
import { DOC_URL, sections } from "../cli/explain.ts";

let cache: Map<string, { title: string; text: string }> | undefined;

function load(): Map<string, { title: string; text: string }> {
  if (cache) return cache;
  try {
    cache = sections(Deno.readTextFileSync(DOC_URL));
  } catch {
    // Without the docs file, hover falls back to the one-line title from codes.ts.
    cache = new Map();
  }
  return cache;
}

/** Markdown explaining `code`, or null for an unknown code. */
export function explainCode(code: string): string | null {
  if (!isKnownCode(code)) return null;
  const doc = load().get(code);
  // One heading level down: hover shows it under the diagnostic's own line.
  if (doc) return doc.text.replace(/^## /, "### ").trimEnd();
  const info = CODES[code];
  return `### ${code}: ${info.title}\n\n(${info.severity}) Run \`vmdesc explain ${code}\` for details.`;
}
