/** Placeholder until the formatter lands: returns the text unchanged. */
import type { Diagnostic } from "./diagnostics/types.ts";
import { parse } from "./parse.ts";

export interface FormatResult {
  text: string;
  diagnostics: Diagnostic[];
}

export function format(text: string, file = "<input>"): FormatResult {
  const p = parse(text, file);
  return { text, diagnostics: p.diagnostics };
}
