/**
 * The long explanations of diagnostic codes: the `## CODE: title` sections of
 * docs/diagnostics.md (meaning, example, fix). `vmdesc explain CODE` prints one, and the
 * language server's hover shows one under a diagnostic.
 */

export const DOC_URL = new URL("../docs/diagnostics.md", import.meta.url);

export interface Explanation {
  title: string;
  /** The section's markdown, from its `## CODE: title` heading on, ending in one newline. */
  text: string;
}

/** Sections of the document by code: the text from `## CODE: ...` up to the next `## `. */
export function sections(markdown: string): Map<string, Explanation> {
  const map = new Map<string, Explanation>();
  const lines = markdown.split(/\r?\n/);
  let current: { code: string; title: string; lines: string[] } | null = null;
  const flush = () => {
    if (current) {
      map.set(current.code, {
        title: current.title,
        text: current.lines.join("\n").trimEnd() + "\n",
      });
    }
  };
  let fence = false;
  for (const line of lines) {
    if (/^(```|~~~)/.test(line)) fence = !fence;
    const m = fence ? null : /^## ([EW]\d{4}): (.*)$/.exec(line);
    if (m) {
      flush();
      current = { code: m[1], title: m[2].trim(), lines: [line] };
    } else if (!fence && /^#{1,2} /.test(line)) {
      flush();
      current = null;
    } else if (current) current.lines.push(line);
  }
  flush();
  return map;
}

/** Every explanation, read once; throws when the document cannot be read. */
export async function readExplanations(): Promise<Map<string, Explanation>> {
  return sections(await Deno.readTextFile(DOC_URL));
}

let cached: Map<string, Explanation> | undefined;

/**
 * Every explanation, read on first use and kept (the language server asks on every hover);
 * empty when the document cannot be read.
 */
export function explanations(): Map<string, Explanation> {
  if (cached) return cached;
  try {
    cached = sections(Deno.readTextFileSync(DOC_URL));
  } catch {
    cached = new Map();
  }
  return cached;
}
