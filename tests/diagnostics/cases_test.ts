/**
 * Every language diagnostic code has a case file tests/diagnostics/cases/<CODE>.vmdesc
 * whose first line says what it shows; compiling it reports that code and nothing else
 * (so the rendered goldens stay about one thing).
 */
import { compile } from "../../lang/mod.ts";
import { createMemoryHost } from "../../lang/host_memory.ts";
import { CODES } from "../../plan/codes.ts";

const DIR = "tests/diagnostics/cases";
const dirPath = decodeURIComponent(new URL("./cases/", import.meta.url).pathname);

function loadCases(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const e of Deno.readDirSync(dirPath)) {
    if (e.isFile) files[`${DIR}/${e.name}`] = Deno.readTextFileSync(dirPath + e.name);
  }
  return files;
}

/** Codes raised by the language (E1xxx are the runtime's, E2xxx the command line's). */
export const LANG_CODES = Object.keys(CODES).filter((c) => !/^E[12]/.test(c));

Deno.test("every language code has a case file", () => {
  const files = loadCases();
  const missing = LANG_CODES.filter((c) => !(`${DIR}/${c}.vmdesc` in files));
  if (missing.length) throw new Error(`no case for: ${missing.join(", ")}`);
});

Deno.test("each case reports exactly its code", () => {
  const files = loadCases();
  const host = createMemoryHost(files);
  const problems: string[] = [];
  for (const code of LANG_CODES) {
    const file = `${DIR}/${code}.vmdesc`;
    const text = files[file];
    if (!text) continue;
    if (!/^\/\/ /.test(text) || !text.split("\n")[0].includes(code)) {
      problems.push(`${code}: the first line should be a comment naming ${code}`);
    }
    const r = compile(text, { file, host });
    const codes = [...new Set(r.diagnostics.map((d) => d.code))];
    if (!codes.includes(code)) problems.push(`${code}: got ${codes.join(", ") || "nothing"}`);
    else if (codes.length > 1) {
      problems.push(`${code}: also reported ${codes.filter((c) => c !== code).join(", ")}`);
    }
    for (const d of r.diagnostics) {
      if (d.code === code && d.severity !== CODES[code as keyof typeof CODES].severity) {
        problems.push(`${code}: severity ${d.severity}`);
      }
      if (!d.message || (d.span && (d.span.start < 0 || d.span.end < d.span.start))) {
        problems.push(`${code}: malformed diagnostic ${JSON.stringify(d)}`);
      }
    }
  }
  if (problems.length) throw new Error(problems.join("\n"));
});
