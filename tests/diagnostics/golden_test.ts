/**
 * Golden tests of every diagnostic code: each `cases/<CODE>.vmdesc` must report <CODE>,
 * and its rendering (human, no color, and JSON) must match `<CODE>.expected.txt` /
 * `<CODE>.expected.json`. `UPDATE_GOLDEN=1 deno task test tests/diagnostics/` rewrites
 * them; review every change.
 *
 * `cases/<CODE>-<what>.vmdesc` are more cases of one behaviour each (error recovery, a
 * follow-on that must not be reported, a span that must be right): the first line names
 * every code the case reports, and it reports exactly those; goldens as above.
 */
import { compile } from "../../lang/mod.ts";
import {
  jsonReport,
  loadWidths,
  renderDiagnostics,
  renderSummary,
} from "../../lang/diagnostics/render.ts";
import { CODES } from "../../plan/codes.ts";
import { golden, listDir, repoHost } from "../golden/harness.ts";

// Rendered as the CLI renders them (string-width loaded on demand there).
await loadWidths();

const DIR = "tests/diagnostics/cases/";
const cases = (await listDir(DIR, /^[EW]\d{4}\.vmdesc$/)).map((n) => n.slice(0, 5));

for (const code of cases) {
  Deno.test(`diagnostic ${code}: ${CODES[code as keyof typeof CODES]?.title ?? "unknown code"}`, async () => {
    const file = `${DIR}${code}.vmdesc`;
    const host = repoHost();
    const text = host.readFile(file)!;
    const r = compile(text, { file, host });
    const codes = r.diagnostics.map((d) => d.code);
    if (!codes.includes(code)) {
      throw new Error(
        `${file} does not report ${code}; it reports: ${codes.join(", ") || "nothing"}`,
      );
    }
    const human = renderDiagnostics(r.diagnostics, host.source) + "\n" +
      renderSummary(r.diagnostics);
    await golden(`${DIR}${code}.expected.txt`, human);
    const json = jsonReport([{
      path: file,
      diagnostics: r.diagnostics,
      machines: [...r.plans.keys()],
    }], host.source);
    await golden(`${DIR}${code}.expected.json`, JSON.stringify(json, null, 2) + "\n");
  });
}

const more = await listDir(DIR, /^[EW]\d{4}-[a-z0-9-]+\.vmdesc$/);

for (const name of more) {
  const base = name.slice(0, -".vmdesc".length);
  Deno.test(`diagnostic case ${base}`, async () => {
    const file = `${DIR}${name}`;
    const host = repoHost();
    const text = host.readFile(file)!;
    const first = text.split("\n")[0];
    if (!first.startsWith("// ")) throw new Error(`${file}: the first line says what it shows`);
    const named = [...new Set(first.match(/\b[EW]\d{4}\b/g) ?? [])].sort();
    if (!named.includes(base.slice(0, 5))) {
      throw new Error(`${file}: the first line names the codes it reports, its own among them`);
    }
    const r = compile(text, { file, host });
    const got = [...new Set(r.diagnostics.map((d) => d.code))].sort();
    if (got.join() !== named.join()) {
      throw new Error(
        `${file} reports ${got.join(", ") || "nothing"}; its first line names ${named.join(", ")}`,
      );
    }
    const human = renderDiagnostics(r.diagnostics, host.source) + "\n" +
      renderSummary(r.diagnostics);
    await golden(`${DIR}${base}.expected.txt`, human);
    const json = jsonReport([{
      path: file,
      diagnostics: r.diagnostics,
      machines: [...r.plans.keys()],
    }], host.source);
    await golden(`${DIR}${base}.expected.json`, JSON.stringify(json, null, 2) + "\n");
  });
}

Deno.test("diagnostic cases cover at least 20 codes, each a known code", () => {
  const unknown = cases.filter((c) => !(c in CODES));
  if (unknown.length) throw new Error(`case files for unknown codes: ${unknown.join(", ")}`);
  const langCodes = Object.keys(CODES).filter((c) => !/^E[12]/.test(c));
  const missing = langCodes.filter((c) => !cases.includes(c));
  if (cases.length < 20) {
    throw new Error(`only ${cases.length} codes have a case file; missing: ${missing.join(", ")}`);
  }
  if (missing.length) {
    console.log(`  language codes without a case file yet: ${missing.join(", ")}`);
  }
});
