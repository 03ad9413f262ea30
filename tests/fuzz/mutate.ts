/**
 * Deterministic mutations of .vmdesc sources for the fuzzer. Case `i` of seed `s` always
 * produces the same text (its PRNG is seeded from both), so a crash found in a long run
 * can be regenerated from two numbers and saved.
 */
import { BOOLEANS, KEYWORDS, UNITS } from "../../lang/syntax/keywords.ts";

/** mulberry32: small, fast, good enough to pick mutations. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seed of case `index` under run seed `seed` (a 32-bit mix of both). */
export function caseSeed(seed: number, index: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ index, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export interface Token {
  start: number;
  end: number;
  kind: "word" | "number" | "string" | "punct" | "comment";
}

/** A rough lexer (the fuzzer must not depend on the real one being right). */
export function tokens(text: string): Token[] {
  const re =
    /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|("(?:[^"\\\n]|\\.)*")|(0[xXbB][0-9A-Fa-f_]+|\d[\d_]*)|([A-Za-z_][A-Za-z0-9_]*)|(\.\.|<<|>>|[{}()=+\-*/:.,])/g;
  const out: Token[] = [];
  for (const m of text.matchAll(re)) {
    const kind = m[1] ? "comment" : m[2] ? "string" : m[3] ? "number" : m[4] ? "word" : "punct";
    out.push({ start: m.index!, end: m.index! + m[0].length, kind });
  }
  return out;
}

const HUGE = [
  "0xFFFF_FFFF_FFFF_FFFF_FF",
  "0xFFFF_FFFF_FFFF_FFFF",
  "18446744073709551616",
  "99999999999999999999999999999999",
  "0x1_0000_0000_0000_0000",
  "16 TiB * 1 TiB",
  "1 << 64",
  "1 << 63",
  "0",
  "0 - 1",
  "4503599627370496",
  "9007199254740993",
  "(0xFFFF_FFFF_FFFF_FFFF + 1)",
  "1 / 0",
  "0b" + "1".repeat(70),
  "0x",
  "0x_",
  "1__0",
  "08",
];

/**
 * Words and pieces mutants are made of: the grammar's own keywords, units and booleans
 * (lang/syntax/keywords.ts, generated from vmdesc.ohm, so a new keyword is fuzzed the day it
 * is added), the names the checker knows, punctuation and awkward characters.
 */
const VOCAB: readonly string[] = [
  ...KEYWORDS,
  ...UNITS,
  ...BOOLEANS,
  "cpus",
  "memory",
  "ram",
  "strategy",
  "cmdline",
  "initrd",
  "load",
  "entry",
  "mode",
  "trap",
  "shadow",
  "pvh",
  "linux",
  "flat",
  "mem32",
  "mem64",
  "io",
  "{",
  "}",
  "(",
  ")",
  "..",
  "+",
  "-",
  "*",
  "/",
  "<<",
  ">>",
  "=",
  ":",
  ".",
  ",",
  '"',
  '"x"',
  "00:02.0",
  "ff:1f.7",
  "1:2:3.4",
  "serial",
  "debug_exit",
  "i8042",
  "virtio_rng",
  "generic",
  "/*",
  "*/",
  "//",
  "\n",
  "\t",
  "\r\n",
  "\u00e9",
  "\u{1F600}",
  "\u0000",
  "\uFEFF",
  "\u200B",
  "\ud800",
];

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)];
}

function int(rnd: () => number, n: number): number {
  return Math.floor(rnd() * n);
}

type Mutation = (text: string, rnd: () => number, corpus: string[]) => string;

export const MUTATIONS: Record<string, Mutation> = {
  byteFlip(t, rnd) {
    if (!t.length) return t;
    const i = int(rnd, t.length);
    const c = rnd() < 0.5
      ? String.fromCharCode(32 + int(rnd, 95))
      : String.fromCharCode(int(rnd, 256));
    return t.slice(0, i) + c + t.slice(i + 1);
  },
  deleteToken(t, rnd) {
    const ts = tokens(t);
    if (!ts.length) return t;
    const k = ts[int(rnd, ts.length)];
    return t.slice(0, k.start) + t.slice(k.end);
  },
  duplicateTokens(t, rnd) {
    const ts = tokens(t);
    if (!ts.length) return t;
    const a = int(rnd, ts.length);
    const b = Math.min(ts.length - 1, a + int(rnd, 6));
    const piece = t.slice(ts[a].start, ts[b].end);
    const times = 1 + int(rnd, 3);
    return t.slice(0, ts[b].end) + (" " + piece).repeat(times) + t.slice(ts[b].end);
  },
  hugeNumber(t, rnd) {
    const ts = tokens(t).filter((k) => k.kind === "number");
    if (!ts.length) return t + `\nlet huge = ${pick(rnd, HUGE)}\n`;
    const k = ts[int(rnd, ts.length)];
    return t.slice(0, k.start) + pick(rnd, HUGE) + t.slice(k.end);
  },
  deepParens(t, rnd) {
    const ts = tokens(t).filter((k) => k.kind === "number");
    const depth = [10, 50, 100, 300, 1000, 5000][int(rnd, 6)];
    if (!ts.length) return t + `\nlet deep = ${"(".repeat(depth)}1${")".repeat(depth)}\n`;
    const k = ts[int(rnd, ts.length)];
    const close = rnd() < 0.8 ? ")".repeat(depth) : ""; // sometimes unbalanced
    return t.slice(0, k.start) + "(".repeat(depth) + t.slice(k.start, k.end) + close +
      t.slice(k.end);
  },
  deepBlocks(t, rnd) {
    const depth = [10, 50, 100, 1000, 5000][int(rnd, 5)];
    const i = int(rnd, t.length + 1);
    const close = rnd() < 0.7 ? "}".repeat(depth) : "";
    return t.slice(0, i) + "{".repeat(depth) + close + t.slice(i);
  },
  longExpression(t, rnd) {
    const n = [10, 100, 300, 1000, 5000][int(rnd, 5)];
    const op = pick(rnd, ["+", "-", "*", "<<", ">>", "/"]);
    return t + `\nlet chain = 1${` ${op} 1`.repeat(n)}\n`;
  },
  truncate(t, rnd) {
    return t.slice(0, int(rnd, t.length + 1));
  },
  swapLines(t, rnd) {
    const lines = t.split("\n");
    if (lines.length < 2) return t;
    const a = int(rnd, lines.length);
    const b = int(rnd, lines.length);
    [lines[a], lines[b]] = [lines[b], lines[a]];
    return lines.join("\n");
  },
  insertToken(t, rnd) {
    const i = int(rnd, t.length + 1);
    return t.slice(0, i) + " " + pick(rnd, VOCAB) + " " + t.slice(i);
  },
  spliceLine(t, rnd, corpus) {
    const other = pick(rnd, corpus).split("\n");
    const lines = t.split("\n");
    lines.splice(int(rnd, lines.length + 1), 0, other[int(rnd, other.length)]);
    return lines.join("\n");
  },
  repeatBlock(t, rnd) {
    // Many machines / devices: duplicate a whole top-level chunk a few times.
    const at = t.indexOf("machine");
    if (at < 0) return t;
    const chunk = t.slice(at);
    return t + ("\n" + chunk).repeat(1 + int(rnd, 3));
  },
  tweakNumber(t, rnd) {
    // Syntax-preserving: another plausible value, so checks and lowering get exercised.
    const ts = tokens(t).filter((k) => k.kind === "number");
    if (!ts.length) return t;
    const k = ts[int(rnd, ts.length)];
    const v = pick(rnd, [
      "0",
      "1",
      "2",
      "3",
      "7",
      "8",
      "15",
      "16",
      "31",
      "32",
      "255",
      "256",
      "0x1000",
      "0xFFF",
      "0x3f8",
      "0x2f8",
      "0xf4",
      "0xcf8",
      "0xE000_0000",
      "0xC000_0000",
      "0xB000_0000",
      "0xFEC0_0000",
      "0x10_0000",
      "4095",
      "65535",
      "65536",
      "0x1_0000_0000",
    ]);
    return t.slice(0, k.start) + v + t.slice(k.end);
  },
  swapWord(t, rnd) {
    // Syntax-mostly-preserving: a name or keyword replaced by another one from the text.
    const ws = tokens(t).filter((k) => k.kind === "word");
    if (ws.length < 2) return t;
    const a = ws[int(rnd, ws.length)];
    const b = ws[int(rnd, ws.length)];
    return t.slice(0, a.start) + t.slice(b.start, b.end) + t.slice(a.end);
  },
  dropLine(t, rnd) {
    const lines = t.split("\n");
    lines.splice(int(rnd, lines.length), 1);
    return lines.join("\n");
  },
};

/**
 * How often each mutation is picked. Most keep the text close to valid so the checker and
 * lowering run; the heavy ones (huge inputs, deep nesting) are rarer so a few thousand
 * cases stay fast.
 */
const WEIGHTS: Record<string, number> = {
  byteFlip: 10,
  deleteToken: 8,
  duplicateTokens: 6,
  hugeNumber: 6,
  deepParens: 2,
  deepBlocks: 2,
  longExpression: 2,
  truncate: 4,
  swapLines: 5,
  insertToken: 6,
  spliceLine: 6,
  repeatBlock: 2,
  tweakNumber: 20,
  swapWord: 10,
  dropLine: 8,
};
const TABLE: string[] = Object.entries(WEIGHTS).flatMap(([k, w]) => Array<string>(w).fill(k));

/** Inputs are capped so one case cannot take seconds (size is bench/lang's business). */
export const MAX_CASE_CHARS = 64 * 1024;

/**
 * The time limit of one case (at most MAX_CASE_CHARS), in process: compile, render and
 * format included. An editor re-checks on every keystroke.
 */
export const CASE_LIMIT_MS = 50;

export interface FuzzCase {
  /** Index of the corpus file mutated. */
  source: number;
  mutations: string[];
  text: string;
}

/**
 * Case `index` of run `seed`: one corpus file with 1..3 mutations applied. The first
 * `preferred` corpus entries (the examples: valid files, so mutants reach the checker and
 * lowering) are picked 60% of the time; the rest (diagnostics cases) otherwise.
 */
export function makeCase(
  corpus: string[],
  seed: number,
  index: number,
  preferred = corpus.length,
): FuzzCase {
  const rnd = prng(caseSeed(seed, index));
  const pool = preferred > 0 && preferred < corpus.length && rnd() >= 0.6;
  const source = pool
    ? preferred + int(rnd, corpus.length - preferred)
    : int(rnd, Math.max(1, preferred));
  let text = corpus[source];
  const n = rnd() < 0.5 ? 1 : 2 + int(rnd, 2);
  const applied: string[] = [];
  for (let k = 0; k < n; k++) {
    const name = pick(rnd, TABLE);
    text = MUTATIONS[name](text, rnd, corpus);
    if (text.length > MAX_CASE_CHARS) text = text.slice(0, MAX_CASE_CHARS);
    applied.push(name);
  }
  return { source, mutations: applied, text };
}
