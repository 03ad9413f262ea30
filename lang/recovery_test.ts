/**
 * The first error of each broken chunk is worded by Ohm, from a cut-down match (the last
 * settings before the failure only: lang/parse.ts `ohmPiece`). parseWithOhmRecovery words
 * it from a match of the whole chunk; everything else (error recovery, lang/syntax/
 * recover.ts) is the same. Trees, spans and diagnostics (message, span, labels, hint,
 * fixes) must be identical — on the corpus, its mutants, and mutants of large machines,
 * where the cut-down match is actually used.
 */
import { createIncrementalParser, parse, parseWithOhmRecovery } from "./parse.ts";
import { fastParse } from "./syntax/fast_parse.ts";
import type { Span } from "./diagnostics/types.ts";
import { corpus, mutate, rng } from "../tests/lang_corpus.ts";

const big = (_k: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v);

function differs(text: string, incremental = false): string | null {
  const file = "t.vmdesc";
  const want = JSON.stringify(parseWithOhmRecovery(text, file), big);
  const got = JSON.stringify(parse(text, file), big);
  if (got !== want) return `parse() differs:\n${firstDifference(got, want)}`;
  if (incremental) {
    const inc = JSON.stringify(createIncrementalParser(file, text).parse(), big);
    if (inc !== want) return `incremental parse differs:\n${firstDifference(inc, want)}`;
  }
  return null;
}

function firstDifference(got: string, want: string): string {
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  const from = Math.max(0, i - 300);
  return ` new …${got.slice(from, i + 300)}\n old …${want.slice(from, i + 300)}`;
}

/** Settings of every shape, so mutants break each kind of setting inside a long body. */
const SETTINGS = [
  "cpus 2",
  "memory 128 MiB",
  "ram 0 .. 640 KiB",
  "ram (1 * 4 MiB) + 2 MiB",
  "pci_hole 3 GiB .. 4 GiB {\n    strategy shadow\n    ecam 0xE000_0000 buses 0..3\n  }",
  "device serial com1 { port 0x3f8 irq 4 }",
  "device debug_exit { port 0xf4 }",
  "device i8042",
  "pci 00:02.0 virtio_rng",
  "pci 00:05.0 generic {\n    vendor 0x1af4\n    bar 0 mem32 4 KiB\n    bar 2 mem64 1 MiB prefetchable\n  }",
  'boot pvh "guest.elf" {\n    cmdline "console=ttyS0"\n  }',
  "cpuid { hide cx16 x2apic }",
  "acpi off",
  "x a << 2 >> 1",
];

function largeMachine(r: () => number, settings: number): string {
  let body = "";
  for (let i = 0; i < settings; i++) {
    body += `  ${SETTINGS[Math.floor(r() * SETTINGS.length)]}\n`;
    if (r() < 0.1) body += "  // a comment\n";
  }
  return `let a = 1\n\nmachine big extends a {\n${body}}\n\nmachine small { cpus 1 }\n`;
}

/** The mutator of tests/lang_corpus.ts, plus text the fast parser declines on its own. */
function mutateMore(text: string, r: () => number): string {
  if (r() < 0.08) {
    const i = Math.floor(r() * (text.length + 1));
    return text.slice(0, i) + (r() < 0.5 ? "\u00e9" : "\u00a0") + text.slice(i);
  }
  return mutate(text, r);
}

Deno.test("cut-down Ohm wording = whole-chunk Ohm wording on the corpus", () => {
  const bad: string[] = [];
  for (const t of corpus()) {
    const why = differs(t, true);
    if (why) bad.push(`${JSON.stringify(t.slice(0, 120))}: ${why}`);
  }
  if (bad.length) throw new Error(bad.join("\n\n"));
});

Deno.test("cut-down Ohm wording = whole-chunk Ohm wording on mutated inputs", () => {
  const r = rng(6_2026_1125);
  const base = corpus().filter((t) => t.length > 0 && t.length < 2500);
  const bad: string[] = [];
  let broken = 0;
  for (let k = 0; k < 300; k++) {
    let t = base[k % base.length];
    const rounds = 1 + Math.floor(r() * 3);
    for (let m = 0; m < rounds; m++) t = mutateMore(t, r);
    if (parse(t, "t.vmdesc").diagnostics.length) broken++;
    const why = differs(t, k % 10 === 0);
    if (why) bad.push(`${JSON.stringify(t)}\n=> ${why}`);
    if (bad.length > 3) break;
  }
  if (bad.length) throw new Error(bad.join("\n\n"));
  if (broken < 100) throw new Error(`only ${broken} mutants were broken: recovery barely ran`);
});

Deno.test("cut-down Ohm wording = whole-chunk Ohm wording on mutants of large machines", () => {
  const r = rng(20261125);
  const bad: string[] = [];
  let salvaged = 0;
  for (let k = 0; k < 70; k++) {
    let t = largeMachine(r, 30 + Math.floor(r() * 50));
    const rounds = 1 + Math.floor(r() * 2);
    for (let m = 0; m < rounds; m++) t = mutateMore(t, r);
    const res = parse(t, "t.vmdesc");
    if (res.ast.items.some((it) => it.kind === "Machine" && it.recovered)) salvaged++;
    const why = differs(t, k % 10 === 0);
    if (why) bad.push(`${JSON.stringify(t)}\n=> ${why}`);
    if (bad.length > 2) break;
  }
  if (bad.length) throw new Error(bad.join("\n\n"));
  // Most mutants break a setting deep inside the body: that is the path under test.
  if (salvaged < 25) throw new Error(`only ${salvaged} broken machines were recovered`);
});

Deno.test("cut-down Ohm wording = whole-chunk: a 510-line machine broken in the middle and at the end", () => {
  const path = new URL("../tests/diagnostics/cases/E0209.vmdesc", import.meta.url);
  const text = Deno.readTextFileSync(path);
  const lines = text.split("\n");
  for (const at of [lines.length >> 1, lines.length - 4]) {
    for (const bad of ["  ram (1 * 4 MiB + 2 MiB", "  device serial { port"]) {
      const t = [...lines.slice(0, at), bad, ...lines.slice(at)].join("\n");
      const why = differs(t);
      if (why) throw new Error(`line ${at} ${JSON.stringify(bad)}: ${why}`);
      if (!parse(t, "t.vmdesc").diagnostics.some((d) => d.code === "E0001")) {
        throw new Error(`line ${at} ${JSON.stringify(bad)}: no E0001`);
      }
    }
  }
});

Deno.test("fast parser at an offset (a chunk of a file) = the same tree, spans shifted", () => {
  const shift = (_k: string, v: unknown) =>
    typeof v === "bigint"
      ? `${v}n`
      : v && typeof v === "object" && "file" in v && "start" in v && "end" in v
      ? { ...v, start: (v as Span).start + 1000, end: (v as Span).end + 1000 }
      : v;
  for (const t of corpus()) {
    const at0 = fastParse(t, "t.vmdesc");
    if (!at0) continue;
    const want = JSON.stringify(at0, shift);
    const got = JSON.stringify(fastParse(t, "t.vmdesc", 1000), big);
    if (got !== want) {
      throw new Error(`${JSON.stringify(t.slice(0, 80))}:\n${firstDifference(got, want)}`);
    }
  }
});
