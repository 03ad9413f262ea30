/**
 * Keeps the examples in docs/diagnostics.md equal to the diagnostics case files: in each
 * language code's section, the first ```vmdesc block is `cases/<CODE>.vmdesc` (long ones
 * abbreviated) and the ```text block after it is what `vmdesc check` prints for it.
 *
 *   deno run -A tests/diagnostics/docs_sync.ts     rewrite docs/diagnostics.md
 *
 * docs_test.ts fails when the document and the cases disagree.
 */
import { compile } from "../../lang/mod.ts";
import { loadWidths, renderDiagnostics } from "../../lang/diagnostics/render.ts";
import { listDir, repoHost, root } from "../golden/harness.ts";

// Rendered as the CLI renders them (string-width loaded on demand there).
await loadWidths();

const DIR = "tests/diagnostics/cases/";
const MAX_LINES = 24;

/** The case source, with the middle of very long ones cut. */
function abbreviate(text: string): string {
  const lines = text.replace(/\n$/, "").split("\n");
  if (lines.length <= MAX_LINES) return lines.join("\n");
  const head = lines.slice(0, 8);
  const tail = lines.slice(-5);
  const cut = lines.length - head.length - tail.length;
  const indent = /^\s*/.exec(lines[8])![0];
  return [...head, `${indent}// ... ${cut} more lines like these ...`, ...tail].join("\n");
}

export interface CaseExample {
  source: string;
  rendered: string;
}

export async function caseExamples(): Promise<Map<string, CaseExample>> {
  const out = new Map<string, CaseExample>();
  for (const name of await listDir(DIR, /^[EW]\d{4}\.vmdesc$/)) {
    const code = name.slice(0, 5);
    const file = DIR + name;
    const host = repoHost();
    const text = host.readFile(file)!;
    const r = compile(text, { file, host });
    out.set(code, {
      source: abbreviate(text),
      rendered: renderDiagnostics(r.diagnostics, host.source).replace(/\n+$/, ""),
    });
  }
  return out;
}

/** The document with every case-backed section's example blocks replaced. */
export function syncDocs(markdown: string, examples: Map<string, CaseExample>): string {
  const lines = markdown.split("\n");
  const out: string[] = [];
  let code: string | null = null;
  let done = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const heading = /^## ([EW]\d{4}): /.exec(line);
    if (heading) {
      code = heading[1];
      done = false;
    } else if (/^#{1,2} /.test(line)) code = null;
    const ex = code ? examples.get(code) : undefined;
    if (ex && !done && line === "```vmdesc") {
      // Skip the old block, and an old rendered block right after it.
      let j = i + 1;
      while (j < lines.length && lines[j] !== "```") j++;
      let k = j + 1;
      while (k < lines.length && lines[k] === "") k++;
      if (lines[k] === "```text") {
        k++;
        while (k < lines.length && lines[k] !== "```") k++;
        j = k;
      }
      out.push("```vmdesc", ex.source, "```", "", "```text", ex.rendered, "```");
      i = j;
      done = true;
      continue;
    }
    out.push(line);
  }
  return out.join("\n");
}

export const DOC = new URL("docs/diagnostics.md", root);

if (import.meta.main) {
  const before = await Deno.readTextFile(DOC);
  const after = syncDocs(before, await caseExamples());
  if (after === before) console.log("docs/diagnostics.md is in sync with the cases");
  else {
    const tmp = new URL("docs/.diagnostics.md.tmp", root);
    await Deno.writeTextFile(tmp, after);
    await Deno.rename(tmp, DOC);
    console.log("rewrote the examples in docs/diagnostics.md from tests/diagnostics/cases/");
  }
}
