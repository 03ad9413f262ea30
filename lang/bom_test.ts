/**
 * A leading UTF-8 byte order mark (issue 14, item 3): Deno's readTextFile keeps it, so lang
 * sees it as U+FEFF. It must change nothing: the same diagnostics (rendered and as JSON,
 * lines and columns as editors show them, which do not count it), the same trees, and the
 * formatter keeps it.
 */
import { compile, createIncrementalParser, createMemoryHost, format, parse } from "./mod.ts";
import { jsonReport, loadWidths, positionAt, renderDiagnostics } from "./diagnostics/render.ts";
import { corpus } from "../tests/lang_corpus.ts";

// Rendered as the CLI renders them (string-width loaded on demand there).
await loadWidths();

const BOM = "\uFEFF";

function eq(a: unknown, b: unknown, what: string) {
  const big = (_k: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v);
  const sa = JSON.stringify(a, big);
  const sb = JSON.stringify(b, big);
  if (sa !== sb) throw new Error(`${what}:\n got  ${sa.slice(0, 600)}\n want ${sb.slice(0, 600)}`);
}

/** What a user sees for `text` as the main file: rendered text and the JSON report. */
function seen(text: string) {
  const host = createMemoryHost({ "m.vmdesc": text }, ["guest.pvh", "guest.elf"]);
  const r = compile(text, { file: "m.vmdesc", host });
  const source = (f: string) => host.readFile(f);
  return {
    codes: r.diagnostics.map((d) => d.code),
    human: renderDiagnostics(r.diagnostics, source),
    json: jsonReport([{ path: "m.vmdesc", diagnostics: r.diagnostics, machines: [] }], source),
    plans: [...r.plans.values()].map((p) => ({ ...p, source: "" })),
  };
}

Deno.test("BOM: every corpus text reports what it reports without one", () => {
  let withDiagnostics = 0;
  for (const text of corpus()) {
    const want = seen(text);
    if (want.codes.length) withDiagnostics++;
    const got = seen(BOM + text);
    eq(got, want, `${JSON.stringify(text.slice(0, 60))}`);
  }
  if (withDiagnostics < 40) throw new Error(`only ${withDiagnostics} texts had diagnostics`);
});

Deno.test("BOM: the tree is the same, every span one unit later; incremental parse agrees", () => {
  for (const text of corpus()) {
    const shift = (_k: string, v: unknown) =>
      typeof v === "bigint"
        ? `${v}n`
        : v && typeof v === "object" && "start" in v && "end" in v && "file" in v
        ? { ...v, start: (v as { start: number }).start + 1, end: (v as { end: number }).end + 1 }
        : v;
    const plain = parse(text, "t.vmdesc");
    const bom = parse(BOM + text, "t.vmdesc");
    const want = JSON.stringify(plain.ast.items, shift);
    const got = JSON.stringify(bom.ast.items, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
    if (got !== want) throw new Error(`tree differs for ${JSON.stringify(text.slice(0, 60))}`);
    eq(bom.diagnostics.length, plain.diagnostics.length, "as many syntax errors");
    const inc = createIncrementalParser("t.vmdesc", BOM + text).parse();
    eq(inc.ast.items.length, bom.ast.items.length, "incremental parse");
    eq(inc.diagnostics.map((d) => d.message), bom.diagnostics.map((d) => d.message), "inc diags");
  }
});

Deno.test("BOM: fmt keeps it and formats the rest as without it", () => {
  for (const text of corpus()) {
    const plain = format(text, "t.vmdesc");
    const bom = format(BOM + text, "t.vmdesc");
    if (plain.diagnostics.length) {
      eq(bom.text, BOM + text, "a file that does not parse is left alone");
      continue;
    }
    eq(bom.text, BOM + plain.text, `formatted ${JSON.stringify(text.slice(0, 60))}`);
    eq(format(bom.text, "t.vmdesc").text, bom.text, "idempotent");
  }
});

Deno.test("BOM: a position on the first line does not count it", () => {
  const text = BOM + "machine m {";
  eq(positionAt(text, 9), { line: 1, column: 9 }, "`m` is column 9, as without the mark");
  eq(positionAt(text, 0), { line: 1, column: 1 }, "the mark itself");
  eq(positionAt("\uFEFFa\n\uFEFFb", 4), { line: 2, column: 2 }, "only a leading mark");
});
