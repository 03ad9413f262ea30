/**
 * Random editor edits applied through applyChanges keep the incremental parser's text equal
 * to the document's, and its parse equal to a from-scratch parse of the same text.
 */
import { assertEquals } from "../tests/lsp/assert.ts";
import { TextDocument } from "vscode-languageserver-textdocument";
import { createIncrementalParser, parse } from "../lang/mod.ts";
import { applyChanges } from "./document.ts";

const base = await Deno.readTextFile(new URL("../tests/lsp/fixtures/main.vmdesc", import.meta.url));
const snippets = [
  "",
  "x",
  " ",
  "\n",
  "1",
  "0x1000",
  " MiB",
  "{",
  "}",
  "..",
  "device serial com2 { port 0x2f8 }\n",
  "// c\n",
  '"',
  "é😀",
];

/** A small deterministic PRNG (xorshift) so a failure reproduces. */
function rng(seed: number) {
  let x = seed || 1;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return Math.abs(x) % n;
  };
}

const strip = (v: unknown) =>
  JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x)));

Deno.test("applyChanges: incremental parse = full parse after random edits", () => {
  const path = "/p/main.vmdesc";
  for (const seed of [1, 7, 42]) {
    const r = rng(seed);
    let doc = TextDocument.create("file:///p/main.vmdesc", "vmdesc", 1, base);
    const parser = createIncrementalParser(path, base);
    parser.parse();
    for (let step = 0; step < 40; step++) {
      const text = doc.getText();
      // One notification with one to three ranged changes (each relative to the previous).
      const n = 1 + r(3);
      const changes = [];
      let t = text;
      for (let k = 0; k < n; k++) {
        const a = r(t.length + 1);
        const b = Math.min(t.length, a + r(8));
        const tmp = TextDocument.create("x", "x", 0, t);
        const insert = snippets[r(snippets.length)];
        changes.push({ range: { start: tmp.positionAt(a), end: tmp.positionAt(b) }, text: insert });
        t = t.slice(0, a) + insert + t.slice(b);
      }
      // Sometimes the whole text at once, as some clients do.
      if (r(10) === 0) changes.splice(0, changes.length, { text: t } as never);
      doc = applyChanges(doc, parser, changes, step + 2);
      assertEquals(doc.getText(), t, `seed ${seed} step ${step}: document text`);
      assertEquals(parser.text(), t, `seed ${seed} step ${step}: parser text`);
      assertEquals(
        strip(parser.parse()),
        strip(parse(t, path)),
        `seed ${seed} step ${step}: parse`,
      );
    }
  }
});
