/**
 * Long explanations of diagnostic codes, read from docs/diagnostics.md (the same source as
 * `vmdesc explain`): the section under a heading `## CODE: title`.
 */
import { CODES, isKnownCode } from "../lang/diagnostics/codes.ts";

let sections: Map<string, string> | undefined;

function load(): Map<string, string> {
  if (sections) return sections;
  sections = new Map();
  let text = "";
  try {
    text = Deno.readTextFileSync(new URL("../docs/diagnostics.md", import.meta.url));
  } catch {
    // Without the docs file, hover falls back to the one-line title from codes.ts.
  }
  let code: string | null = null;
  let buf: string[] = [];
  const flush = () => {
    if (code) sections!.set(code, buf.join("\n").trim());
  };
  for (const line of text.split(/\r?\n/)) {
    const m = /^##\s+([EW]\d{4})\b/.exec(line);
    if (m) {
      flush();
      code = m[1];
      buf = [line.replace(/^##\s+/, "### ")];
    } else if (/^#{1,2}\s/.test(line)) {
      flush();
      code = null;
      buf = [];
    } else if (code) {
      buf.push(line);
    }
  }
  flush();
  return sections;
}

/** Markdown explaining `code`, or null for an unknown code. */
export function explainCode(code: string): string | null {
  if (!isKnownCode(code)) return null;
  const doc = load().get(code);
  if (doc) return doc;
  const info = CODES[code];
  return `### ${code}: ${info.title}\n\n(${info.severity}) Run \`vmdesc explain ${code}\` for details.`;
}
