/**
 * Worst cases (issue 14): no input of up to 1 MB takes more than 10× the time of a valid
 * file of the same size (compile and format, in process, CPU time of this thread: see
 * tests/fuzz/clock.ts). Generated inputs of each shape the fuzzer found slow and a few
 * more: deep nesting of every bracket, very long expressions, many errors of every kind,
 * long lines, long names, strings and comments, long `extends` chains.
 */
import { compile, createMemoryHost, format } from "../lang/mod.ts";
import { generate } from "../bench/lang/mod.ts";
import { caseClock } from "./fuzz/clock.ts";

const clock = caseClock();
const FILE = "w.vmdesc";
const LIMIT = 10;

/** What a keystroke in an editor costs: compile (with checks) and format. */
function work(text: string) {
  const host = createMemoryHost({ [FILE]: text }, ["guest.elf"]);
  const r = compile(text, { file: FILE, host });
  format(text, FILE);
  return r;
}

function best(runs: number, text: string): number {
  let ms = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = clock.now();
    work(text);
    ms = Math.min(ms, clock.now() - t0);
  }
  return ms;
}

/** A valid file of whole machines, at most `size` characters. */
function valid(size: number): string {
  const text = generate(Math.ceil(size / 20));
  const cut = text.lastIndexOf("\nmachine ", size);
  return text.slice(0, cut + 1);
}

/** `unit` repeated to fill `size` characters between `head` and `tail`. */
function fill(head: string, unit: string, tail: string, size: number): string {
  const n = Math.max(1, Math.floor((size - head.length - tail.length) / unit.length));
  return head + unit.repeat(n) + tail;
}

const SHAPES: Record<string, (size: number) => string> = {
  "deep { at the top": (s) => fill("", "{", "", s),
  "deep { in a machine": (s) => fill("machine m {\n  ", "{", "\n}\n", s),
  "balanced { }": (s) => "{".repeat(s / 2) + "}".repeat(s / 2),
  "deep ( in a let": (s) => "let a = " + "(".repeat(s / 2 - 8) + "1" + ")".repeat(s / 2 - 8),
  "deep ( unclosed": (s) => fill("machine m {\n  memory ", "(", "\n}\n", s),
  "long expression (let)": (s) => fill("let a = 1", " + 1", "\n", s),
  "long expression, broken at its end": (s) => fill("let a = 1", " + 1", " +\n", s),
  "long expression in a setting": (s) =>
    fill("machine m {\n  memory 1", " * 1", ' MiB\n  boot pvh "guest.elf"\n}\n', s),
  "every line a unit typo and a stray =": (s) =>
    fill("machine m {\n", "  memory = 12 MB\n", "}\n", s),
  "every line garbage in a machine": (s) => fill("machine m {\n", "  ) ( ] [ .. ,\n", "}\n", s),
  "every line a broken let": (s) => fill("", "let a = 1 +\n", "", s),
  "every line an unclosed device": (s) =>
    fill("machine m {\n", "  device serial c { port 0x3f8\n", "}\n", s),
  "every line a misspelt keyword": (s) =>
    fill("machine m {\n", "  devcie serial c { port 0x3f8 }\n", "}\n", s),
  "every line a - in a name": (s) => fill("machine m {\n", "  pci 00:02.0 virtio-rng\n", "}\n", s),
  "every line an unknown setting": (s) => fill("machine m {\n", "  memroy 1 MiB\n", "}\n", s),
  "every line an undefined name": (s) =>
    fill("let x1 = 1\nlet x2 = 2\nmachine m {\n", "  cpus y1\n", "}\n", s),
  "many constants, many undefined names": (s) => {
    let lets = "";
    for (let i = 0; lets.length < s / 2 - 40; i++) lets += `let constant_${i} = ${i}\n`;
    let uses = "machine m {\n";
    for (let i = 0; uses.length < s / 2 - 40; i++) uses += `  ram constnt_${i} + 4 KiB\n`;
    return lets + uses + "}\n";
  },
  "one long line of settings": (s) => fill("machine m { ", "cpus 1 ", "}\n", s),
  "one long line of garbage": (s) => fill("machine m { ", "% ", "}\n", s),
  "a huge name": (s) => fill("machine m { ", "a", " 1 }\n", s),
  "a huge string": (s) => fill('let s = "', "a", '"\n', s),
  "an unterminated string": (s) => fill('let s = "', "a", "", s),
  "an unterminated comment": (s) => fill("machine m { /* ", "a", "", s),
  "a huge comment": (s) => fill("/* ", "a", " */ machine m {}\n", s),
  "a long extends chain": (s) => {
    let t = 'machine m0 {\n  memory 64 MiB\n  boot pvh "guest.elf"\n}\n';
    for (let i = 1; t.length < s - 40; i++) t += `machine m${i} extends m${i - 1} { cpus 2 }\n`;
    return t;
  },
  "many machines, many errors each": (s) =>
    fill("", 'machine m {\n  memroy 1 MB\n  device seria { prot 1 }\n  boot pvm "x"\n}\n', "", s),
};

for (const size of [64 * 1024, 1024 * 1024]) {
  const label = size >= 1 << 20 ? "1 MiB" : "64 KiB";
  Deno.test(`worst cases of ${label}: each at most ${LIMIT}× a valid file of the same size`, () => {
    const base = valid(size);
    best(2, base); // warm-up
    const baseMs = best(3, base);
    const rows: string[] = [];
    const slow: string[] = [];
    for (const [name, gen] of Object.entries(SHAPES)) {
      const text = gen(size);
      if (text.length > size) throw new Error(`${name}: ${text.length} characters > ${size}`);
      let ms = best(1, text);
      if (ms > baseMs * 2) ms = Math.min(ms, best(2, text)); // a collection, not the input
      const ratio = ms / baseMs;
      rows.push(`  ${ratio.toFixed(2).padStart(6)}×  ${ms.toFixed(1).padStart(7)} ms  ${name}`);
      if (ratio > LIMIT) slow.push(`${name}: ${ratio.toFixed(1)}× (${ms.toFixed(0)} ms)`);
    }
    console.log(
      `valid ${base.length} characters: ${baseMs.toFixed(1)} ms (${clock.kind})\n${
        rows.join("\n")
      }`,
    );
    if (slow.length) throw new Error(`over ${LIMIT}× a valid file:\n${slow.join("\n")}`);
  });
}
