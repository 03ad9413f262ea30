/**
 * Test inputs shared by the language's tests: the examples, the diagnostic cases, a few
 * tricky snippets, and a deterministic mutator (byte flips, slice deletions and
 * duplications, inserted tokens, huge numbers).
 */
const root = new URL("../", import.meta.url);

export function corpus(): string[] {
  const out: string[] = [];
  for (const dir of ["examples/", "tests/diagnostics/cases/"]) {
    const path = decodeURIComponent(new URL(dir, root).pathname);
    for (const e of Deno.readDirSync(path)) {
      if (e.name.endsWith(".vmdesc") && !e.name.startsWith("E0209")) {
        out.push(Deno.readTextFileSync(path + e.name));
      }
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
    'machine m { x true y false z 1 .. 2 w 3 + 4 v "s" }',
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

const PIECES = [
  "{",
  "}",
  "..",
  "+",
  "<<",
  "(",
  ")",
  "machine",
  "device",
  "pci",
  "bar",
  "buses",
  "auto",
  "0x",
  "1",
  "GiB",
  '"',
  "//",
  "/*",
  "*/",
  "\n",
  " ",
  "=",
  ":",
  ".",
  "hide",
  "extends",
  "let",
  "true",
  "99999999999999999999999",
];

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
