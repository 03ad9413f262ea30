/**
 * The fast parser against the Ohm grammar (the specification): on the examples, every
 * diagnostic case and a few hundred deterministic mutations of them, both must accept
 * exactly the same ASCII texts and build identical trees, spans included.
 */
import { fastParse } from "./fast_parse.ts";
import { parse, parseWithOhm } from "../parse.ts";
import { corpus, mutate, rng } from "../../tests/lang_corpus.ts";

const big = (_k: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v);

function compare(text: string): string | null {
  const fast = fastParse(text, "t.vmdesc");
  const ohm = parseWithOhm(text, "t.vmdesc");
  const ohmOk = ohm.diagnostics.length === 0;
  if (fast) {
    if (!ohmOk) return `fast accepted what Ohm rejects: ${ohm.diagnostics[0].message}`;
    const a = JSON.stringify(fast, big);
    const b = JSON.stringify(ohm.ast, big);
    if (a !== b) return `trees differ:\n fast ${a.slice(0, 800)}\n ohm  ${b.slice(0, 800)}`;
    return null;
  }
  // The fast parser may decline only for non-ASCII text or an unterminated block comment.
  const unusual = /[^\u0020-\u007e\s]/u.test(text) || /\/\*(?![\s\S]*\*\/)/.test(text);
  if (ohmOk && !unusual) return "fast declined a text Ohm accepts";
  return null;
}

Deno.test("fast parser = Ohm grammar on the corpus", () => {
  const bad: string[] = [];
  for (const t of corpus()) {
    const why = compare(t);
    if (why) bad.push(`${JSON.stringify(t.slice(0, 120))}: ${why}`);
  }
  if (bad.length) throw new Error(bad.join("\n\n"));
});

Deno.test("fast parser = Ohm grammar on mutated inputs", () => {
  const r = rng(20261125);
  const base = corpus().filter((t) => t.length > 0 && t.length < 2500);
  const bad: string[] = [];
  let accepted = 0;
  for (let k = 0; k < 400; k++) {
    let t = base[k % base.length];
    const rounds = 1 + Math.floor(r() * 3);
    for (let m = 0; m < rounds; m++) t = mutate(t, r);
    if (fastParse(t, "t.vmdesc")) accepted++;
    // parse() (fast, then chunk by chunk) fails exactly when the Ohm grammar rejects.
    if (
      (parse(t, "t.vmdesc").diagnostics.length > 0) !==
        (parseWithOhm(t, "t.vmdesc").diagnostics.length > 0)
    ) {
      bad.push(`${JSON.stringify(t)}\n=> parse() and Ohm disagree on whether it is valid`);
    }
    const why = compare(t);
    if (why) bad.push(`${JSON.stringify(t)}\n=> ${why}`);
    if (bad.length > 3) break;
  }
  if (bad.length) throw new Error(bad.join("\n\n"));
  if (accepted < 40) {
    throw new Error(
      `only ${accepted} mutants parsed: the mutations are too destructive to compare trees`,
    );
  }
});

Deno.test("deep nesting ends in a diagnostic, not an exception", () => {
  const r = parseWithOhm(`let a = ${"(".repeat(5000)}1${")".repeat(5000)}`, "t.vmdesc");
  if (!r.diagnostics.length && r.ast.items.length !== 1) {
    throw new Error("expected a tree or a diagnostic");
  }
});

Deno.test("every example and well-formed case takes the fast path", () => {
  for (const dir of ["../../examples/", "../../tests/diagnostics/cases/"]) {
    const path = decodeURIComponent(new URL(dir, import.meta.url).pathname);
    for (const e of Deno.readDirSync(path)) {
      // E0001 cases are syntax errors on purpose.
      if (!e.name.endsWith(".vmdesc") || e.name.startsWith("E0001")) continue;
      if (!fastParse(Deno.readTextFileSync(path + e.name), e.name)) {
        throw new Error(`${dir}${e.name} fell back to Ohm`);
      }
    }
  }
});
