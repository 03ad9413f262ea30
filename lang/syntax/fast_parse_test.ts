/**
 * The fast parser against the Ohm grammar (the specification): on the examples, every
 * diagnostic case and a few hundred deterministic mutations of them, both must accept
 * exactly the same ASCII texts and build identical trees, spans included.
 */
import { fastParse } from "./fast_parse.ts";
import { parseWithOhm } from "../parse.ts";

const root = new URL("../../", import.meta.url);

export function corpus(): string[] {
  const out: string[] = [];
  for (const dir of ["examples/", "tests/diagnostics/cases/"]) {
    const path = decodeURIComponent(new URL(dir, root).pathname);
    for (const e of Deno.readDirSync(path)) {
      if (e.name.endsWith(".vmdesc") && !e.name.startsWith("E0209")) out.push(Deno.readTextFileSync(path + e.name));
    }
  }
  out.push(
    "",
    "// only a comment",
    "let a = ((((1))))",
    "let a = 1 << 2 >> 3 + 4 - 5 * 6 / 7",
    "machine m { ram a + b + c  ram (a) + b .. c }",
    'machine m { boot pvh "x\\"y\\\\z" { cmdline "a\\nb" } }',
    "machine m { pci 0000:00:02.0 virtio_rng { bar 0 mem64 1 MiB prefetchable } }",
    "machine m { pci_hole 1 .. 2 { ecam 3 buses 1 ecam 4 buses auto } }",
    "machine m { device a b {} device c { } cpuid { hide a b hide c } }",
    "machine m { x true y false z 1 .. 2 w 3 + 4 v \"s\" }",
    "machine m { memory 4GiB }",
  );
  return out;
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ["{", "}", "..", "+", "<<", "(", ")", "machine", "device", "pci", "bar", "buses", "auto", "0x", "1", "GiB", '"', "//", "/*", "*/", "\n", " ", "=", ":", ".", "hide", "extends", "let", "true", "99999999999999999999999"];

export function mutate(text: string, r: () => number): string {
  const i = Math.floor(r() * (text.length + 1));
  const j = Math.min(text.length, i + 1 + Math.floor(r() * 12));
  switch (Math.floor(r() * 5)) {
    case 0: // delete a slice
      return text.slice(0, i) + text.slice(j);
    case 1: // duplicate a slice
      return text.slice(0, j) + text.slice(i, j) + text.slice(j);
    case 2: // insert a token
      return text.slice(0, i) + PIECES[Math.floor(r() * PIECES.length)] + text.slice(i);
    case 3: // flip a character to printable ASCII
      return text.slice(0, i) + String.fromCharCode(32 + Math.floor(r() * 95)) + text.slice(i + 1);
    default: // replace a word with another
      return text.replace(/\b[a-z_]+\b/, PIECES[Math.floor(r() * PIECES.length)]);
  }
}

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
  const unusual = /[^\x00-\x7f]/.test(text) || /\/\*(?![\s\S]*\*\/)/.test(text);
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
    const why = compare(t);
    if (why) bad.push(`${JSON.stringify(t)}\n=> ${why}`);
    if (bad.length > 3) break;
  }
  if (bad.length) throw new Error(bad.join("\n\n"));
  if (accepted < 40) throw new Error(`only ${accepted} mutants parsed: the mutations are too destructive to compare trees`);
});

Deno.test("deep nesting ends in a diagnostic, not an exception", () => {
  const r = parseWithOhm(`let a = ${"(".repeat(5000)}1${")".repeat(5000)}`, "t.vmdesc");
  if (!r.diagnostics.length && r.ast.items.length !== 1) throw new Error("expected a tree or a diagnostic");
});
