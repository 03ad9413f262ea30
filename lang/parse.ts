/**
 * Parsing: text → AST + syntax diagnostics. Never throws.
 *
 * The fast path lives in lang/parse_lean.ts (no ohm-js); this module is the Ohm side and
 * installs itself as its fallback when loaded. On a syntax error the parser still returns
 * a tree: the file is cut into top-level chunks at lines that start with `import`, `let`
 * or `machine`, each chunk is parsed on its own, the chunks that parse contribute their
 * items, and a broken chunk is read by error recovery (lang/syntax/recover.ts) as its
 * author most likely meant it. So one typo hides neither the rest of its machine nor the
 * rest of the file. Ohm words the first error of a broken chunk (its "expected …" comes
 * from the grammar's rule descriptions); recovery words what it understood exactly (a unit
 * typo, an unclosed `{`) and the later errors.
 */
import type * as ohm from "ohm-js";
import type { Program } from "./ast.ts";
import type { Diagnostic, Span } from "./diagnostics/types.ts";
import { getGrammar, getSemantics, spanContext } from "./syntax/grammar.ts";
import { fastParse, fastParseOrProgress } from "./syntax/fast_parse.ts";
import { suggest } from "./suggest.ts";
import { error } from "./diagnostics/make.ts";
import { KEYWORDS, UNITS } from "./syntax/keywords.ts";
import type { BlockKind } from "./syntax/fast_parse.ts";
import { type Lost, recoverParse, type Recovery, unitFor } from "./syntax/recover.ts";
import { depthChecked, installOhmFallback, parse, type ParseResult } from "./parse_lean.ts";

export { parse } from "./parse_lean.ts";
export type { ParseResult } from "./parse_lean.ts";

// parse() (lang/parse_lean.ts) hands what the fast parser declines to Ohm from now on.
installOhmFallback((text, file) => guarded(text, file, () => parseChunked(text, file)));

/**
 * The error path, cheap on big files: each top-level chunk goes through the fast parser
 * and only chunks it declines go through Ohm (for the first error's words) and recovery,
 * so one typo in a 10k-line file costs one small Ohm match, not a whole-file one. Inside a
 * broken machine Ohm only sees the few settings before the failure (`ohmPiece`), and only
 * up to a budget of text per parse (`OHM_BUDGET`): past it, recovery words the error too.
 */
function parseChunked(text: string, file: string, mode: RecoveryMode = "fast"): ParseResult {
  const budget = { left: OHM_BUDGET };
  // Each chunk is whole top-level items (a chunk ends before a line that starts with a
  // reserved word, which nothing can continue into), so when every chunk parses, their
  // items are the file's: no Ohm match of the whole text is needed.
  return parseChunks(text, file, (chunk, from) => matchPiece(chunk, file, from, mode, budget));
}

/**
 * Characters of text Ohm may match per parse to word first errors. Ohm reads 75-350 KiB/s
 * here, and a long arithmetic chain (its left recursion grows a seed per operator) costs
 * ~4 µs a character: 1500 characters hold every broken setting of a real file with room
 * to spare (Ohm sees at most the three settings before the failure) and cost at most
 * ~6 ms. Past the budget (a fuzzer's 20 KB expression, many broken chunks) recovery words
 * the errors, so no input pays more than that for Ohm.
 */
const OHM_BUDGET = 1_500;

/**
 * The chunk loop of every recovery: each top-level chunk (`chunkStarts`) matched on its own
 * by `match`; a chunk that fails is read by error recovery, and reported (E0001): its
 * first failure as `match` words it, what recovery understood, and what it had to skip.
 * The tree spans the whole text; without a failing chunk the diagnostics are empty and the
 * caller decides (the whole text may still fail, or parse with another matcher).
 */
function parseChunks(
  text: string,
  file: string,
  match: (chunk: string, from: number) => PieceResult,
): ParseResult {
  const starts = chunkStarts(text);
  const items: Program["items"] = [];
  const diagnostics: Diagnostic[] = [];
  for (let k = 0; k < starts.length; k++) {
    const from = starts[k];
    const to = k + 1 < starts.length ? starts[k + 1] : text.length;
    const chunk = text.slice(from, to);
    const r = match(chunk, from);
    if (r.ok) {
      for (const it of r.items) items.push(it); // (no spread: may be huge)
    } else {
      const rec = recoverParse(chunk, file, from);
      for (const d of chunkDiagnostics(r, rec, chunk, file, from)) diagnostics.push(d);
      for (const it of rec.items) items.push(it);
    }
  }
  return {
    ast: { kind: "Program", items, span: { file, start: 0, end: text.length } },
    diagnostics,
  };
}

/**
 * The E0001s of a broken chunk. Ohm's first failure, unless recovery read through that
 * place without skipping anything because of something it understood before it (then
 * that is the error: `256 MB` makes Ohm fail at the next line, an unclosed `{` at the
 * line after its block); what recovery understood; and each later stretch it skipped.
 */
function chunkDiagnostics(
  first: Failed,
  rec: Recovery,
  chunk: string,
  file: string,
  from: number,
): Diagnostic[] {
  const out: Diagnostic[] = [...rec.problems];
  // Problem positions (in the chunk), sorted: "is there one in [a, b)" by binary search.
  const at = rec.problems.map((d) => d.span!.start - from).sort((a, b) => a - b);
  const firstAtOrAfter = (x: number) => {
    let lo = 0;
    let hi = at.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (at[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const problemIn = (a: number, b: number) => {
    const i = firstAtOrAfter(a);
    return i < at.length && at[i] < b;
  };
  let worded: Lost | undefined;
  if (first.pos !== null) {
    const p0 = first.pos;
    worded = rec.lost.find((l) => l.start <= p0 && p0 <= Math.max(l.end, l.failAt));
    // Explained by what recovery understood: before it, when recovery read through that
    // place; or in the text skipped there.
    const explained = worded
      ? problemIn(worded.start, Math.max(worded.end, worded.failAt + 1))
      : at.length > 0 && at[0] <= p0;
    if (!explained) out.push(syntaxError({ pos: p0, expected: first.expected }, chunk, file, from));
  }
  for (const l of rec.lost) {
    if (l === worded || problemIn(l.start, l.end)) continue;
    out.push(lostError(l, chunk, file, from));
  }
  if (out.length === 0) {
    // Recovery read it all and Ohm had no say: never let a failing chunk pass unreported.
    out.push(
      lostError({ start: 0, end: 0, failAt: 0, block: "top", atStart: true }, chunk, file, from),
    );
  }
  return out.sort((a, b) => a.span!.start - b.span!.start);
}

/** What each kind of block expects where an item starts, in the grammar's words. */
const BLOCK_EXPECTS: Record<BlockKind | "top", string> = {
  top: "end of input or a top-level `import`, `let` or `machine`",
  machine: '"}" or a setting such as cpus, memory, pci_hole, device, pci or boot',
  pci_hole: '"}", "ecam", or a property name',
  body: '"}", a property name, or "bar"',
  cpuid: '"}" or "hide"',
};

/** E0001 for text recovery skipped, worded from where it stopped matching. */
function lostError(l: Lost, chunk: string, file: string, from: number): Diagnostic {
  const found = tokenAt(chunk, l.failAt);
  const what = found.length ? `\`${found}\`` : "the end of the file";
  const valueDue = !l.atStart &&
    /^\s*[A-Za-z_][A-Za-z0-9_]*\s*$/.test(chunk.slice(l.start, l.failAt));
  const expected = l.atStart
    ? BLOCK_EXPECTS[l.block]
    : valueDue
    ? "a value: a number, a range, a name or a string"
    : null;
  const span: Span = { file, start: from + l.failAt, end: from + l.failAt + found.length };
  const d = expected
    ? error("E0001", `expected ${expected}, found ${what}`, span, hintFor(expected, found))
    : error(
      "E0001",
      `this ${l.block === "top" ? "item" : "setting"} does not parse: unexpected ${what}`,
      span,
      found === ""
        ? "the file ends early: is a closing `}` missing?"
        : "check the syntax of this setting; `vmdesc explain E0001` shows the forms",
    );
  if (!d.fixes) keywordTypo(d, chunk, l.failAt, file, from);
  return d;
}

/**
 * How recovery parses a piece of text: "fast" (the default) tries the fast parser, then
 * Ohm on the part that matters (`ohmPiece`); "ohm" matches every declined piece whole
 * with Ohm, kept reachable so lang/recovery_test.ts can check that both word the first
 * error of each chunk the same.
 */
type RecoveryMode = "fast" | "ohm";

/** A piece that did not parse: Ohm's first failure, or null past the Ohm budget. */
type Failed = { ok: false; pos: number; expected: string } | { ok: false; pos: null; expected: "" };

/** What recovery needs from one parse of a piece: its items, or its first failure. */
type PieceResult = { ok: true; items: Program["items"] } | Failed;

function matchPiece(
  text: string,
  file: string,
  from: number,
  mode: RecoveryMode,
  budget: { left: number },
): PieceResult {
  if (mode === "ohm") {
    const fast = fastParse(text, file, from);
    if (fast) return { ok: true, items: fast.items };
    return ohmWhole(text, file, from);
  }
  const fast = fastParseOrProgress(text, file, from);
  if (fast.program) return { ok: true, items: fast.program.items };
  return ohmPiece(text, file, from, fast.settingStarts, fast.furthest, budget);
}

function ohmWhole(text: string, file: string, from: number): PieceResult {
  let m: ohm.MatchResult;
  try {
    m = getGrammar().match(text, "Program");
  } catch (e) {
    // Nested deeper than Ohm's stack: recovery words it.
    if (e instanceof RangeError) return { ok: false, pos: null, expected: "" };
    throw e;
  }
  if (m.succeeded()) return { ok: true, items: toAst(m, file, from).items };
  const f = m as ohm.FailedMatchResult;
  return { ok: false, pos: f.getRightmostFailurePosition(), expected: f.getExpectedText() };
}

/**
 * Ohm's verdict on a text the fast parser declined inside a machine body, at the cost of
 * the last settings only. The fast parser follows the grammar choice for choice, so Ohm
 * would consume the same settings before `settingStarts`' last entry (k): its rightmost
 * failure lies at or after setting k, and only settings k-2 and k-1 (whose look-ahead for
 * an operator, a unit or a device name reaches at most one setting on) can record a
 * failure there. Settings 0..k-3 are cut out of the text Ohm sees and the failure position
 * shifted back, so the position and the "expected …" text are those of the whole match
 * (lang/recovery_test.ts compares). If Ohm accepts the cut text after all (the fast parser
 * declined for a reason of its own, e.g. non-ASCII), the whole text is matched for the tree.
 */
function ohmPiece(
  text: string,
  file: string,
  from: number,
  settingStarts: number[] | null,
  furthest: number,
  budget: { left: number },
): PieceResult {
  const k = settingStarts ? settingStarts.length - 1 : -1;
  const cut = settingStarts && k >= 3 ? [settingStarts[0], settingStarts[k - 2]] : null;
  // What Ohm would read before it fails: past the budget, recovery words the error.
  const cost = furthest - (cut ? cut[1] - cut[0] : 0) + 200;
  if (cost > budget.left) {
    budget.left = 0;
    return { ok: false, pos: null, expected: "" };
  }
  budget.left -= cost;
  if (cut) {
    const [cutFrom, cutTo] = cut;
    let m: ohm.MatchResult;
    try {
      m = getGrammar().match(text.slice(0, cutFrom) + text.slice(cutTo), "Program");
    } catch (e) {
      if (e instanceof RangeError) return { ok: false, pos: null, expected: "" };
      throw e;
    }
    if (m.failed()) {
      const f = m as ohm.FailedMatchResult;
      const pos = f.getRightmostFailurePosition();
      return {
        ok: false,
        pos: pos >= cutFrom ? pos + (cutTo - cutFrom) : pos,
        expected: f.getExpectedText(),
      };
    }
  }
  return ohmWhole(text, file, from);
}

/**
 * parse() with the first error of each broken chunk worded by an Ohm match of the whole
 * chunk (no cut, no budget): internal, for lang/recovery_test.ts, which checks that the
 * cut-down match words it the same.
 */
export function parseWithOhmRecovery(text: string, file = "<input>"): ParseResult {
  const fast = fastParse(text, file);
  if (fast) return depthChecked({ ast: fast, diagnostics: [] }, text, file);
  return depthChecked(guarded(text, file, () => parseChunked(text, file, "ohm")), text, file);
}

/** The Ohm path alone (tests compare it with the fast path). */
export function parseWithOhm(text: string, file = "<input>"): ParseResult {
  return guarded(text, file, () => fromMatch(getGrammar().match(text, "Program"), text, file));
}

/** Deeply nested input can exhaust the stack inside Ohm: report it, never throw. */
function guarded(text: string, file: string, run: () => ParseResult): ParseResult {
  try {
    return run();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return {
      ast: { kind: "Program", items: [], span: { file, start: 0, end: text.length } },
      diagnostics: [
        error(
          "E0001",
          "this file is nested too deeply to parse",
          { file, start: 0, end: Math.min(text.length, 1) },
          "use fewer nested parentheses (split the expression with `let` constants)",
        ),
      ],
    };
  }
}

function fromMatch(m: ohm.MatchResult, text: string, file: string): ParseResult {
  if (m.succeeded()) {
    const ast = toAst(m, file, 0);
    ast.span = { file, start: 0, end: text.length };
    return { ast, diagnostics: [] };
  }
  return recover(text, file, m as ohm.FailedMatchResult);
}

/** Ohm's failure as recovery uses it. */
function failure(m: ohm.FailedMatchResult): { pos: number; expected: string } {
  return { pos: m.getRightmostFailurePosition(), expected: m.getExpectedText() };
}

function toAst(m: ohm.MatchResult, file: string, offset: number): Program {
  spanContext.file = file;
  spanContext.offset = offset;
  try {
    return getSemantics()(m).ast() as Program;
  } finally {
    spanContext.offset = 0;
  }
}

/** The E0001 diagnostic for a failed match of `text` placed at `offset` in the file. */
function syntaxError(
  m: { pos: number; expected: string },
  text: string,
  file: string,
  offset: number,
): Diagnostic {
  const { pos, expected } = m;
  const found = tokenAt(text, pos);
  const span: Span = { file, start: offset + pos, end: offset + pos + found.length };
  const what = found.length ? `\`${found}\`` : "the end of the file";
  const d = error("E0001", `expected ${expected}, found ${what}`, span, hintFor(expected, found));
  // A misspelt unit (`128 Mib`) is read as the next setting's name, and the error shows
  // up one token later: point at the word, suggest the unit and offer the fix.
  let prev = previousWord(text, pos);
  // `memory 128 Mib` then `cpus 1`: `Mib cpus` reads as a setting, so look two words back.
  const before = prev ? previousWord(text, prev.start) : null;
  if (prev && before && !unitFor(prev.word) && unitFor(before.word)) prev = before;
  if (prev && !(UNITS as readonly string[]).includes(prev.word)) {
    const unit = unitFor(prev.word);
    if (
      unit &&
      /[0-9)]\s*$/.test(
        text.slice(Math.max(0, prev.start - 40), prev.start).split("\n").pop() ?? "",
      )
    ) {
      const wspan: Span = {
        file,
        start: offset + prev.start,
        end: offset + prev.start + prev.word.length,
      };
      d.labels.push({ span: wspan, message: "read as the name of a new setting" });
      d.hint = `\`${prev.word}\` is not a unit: did you mean \`${unit}\`? (units: ${
        UNITS.join(", ")
      })`;
      d.fixes = [{ title: `change to \`${unit}\``, span: wspan, replacement: unit }];
    }
  }
  if (!d.fixes) keywordTypo(d, text, pos, file, offset);
  return d;
}

/**
 * Words a line can start with, for "did you mean" on a misspelt one: the grammar's keywords
 * but `auto`, a value (`buses auto`) that never starts a line. Ties go to the first.
 */
const LINE_KEYWORDS: readonly string[] = KEYWORDS.filter((k) => k !== "auto");

/**
 * `devcie serial com1 { ... }` parses as settings until the `{`: when the line the error is
 * on (or the one before it) starts with a near-miss of a keyword, say so and offer the fix.
 */
function keywordTypo(d: Diagnostic, text: string, pos: number, file: string, offset: number) {
  let k = pos - 1;
  while (k > 0 && /\s/.test(text[k])) k--;
  for (const at of [pos, k]) {
    const lineStart = text.lastIndexOf("\n", at - 1) + 1;
    const m = /^[ \t]*([A-Za-z_][A-Za-z0-9_]*)/.exec(text.slice(lineStart, lineStart + 80));
    if (!m || LINE_KEYWORDS.includes(m[1])) continue;
    const kw = suggest(m[1], LINE_KEYWORDS);
    if (!kw) continue;
    const start = lineStart + m[0].length - m[1].length;
    const wspan: Span = { file, start: offset + start, end: offset + start + m[1].length };
    d.labels.push({ span: wspan, message: `read as a setting named \`${m[1]}\`` });
    d.hint = `\`${m[1]}\` is not a keyword: did you mean \`${kw}\`?`;
    d.fixes = [{ title: `change to \`${kw}\``, span: wspan, replacement: kw }];
    return;
  }
}

/** The identifier-like word ending right before `pos` (spaces between allowed). */
function previousWord(text: string, pos: number): { word: string; start: number } | null {
  let e = pos;
  while (e > 0 && /\s/.test(text[e - 1])) e--;
  let b = e;
  while (b > 0 && /[A-Za-z0-9_]/.test(text[b - 1])) b--;
  if (b === e || !/[A-Za-z_]/.test(text[b])) return null;
  return { word: text.slice(b, e), start: b };
}

function hintFor(expected: string, found: string): string | null {
  if (found === "") return "the file ends early: is a closing `}` missing?";
  if (/^[0-9]/.test(found) && expected.includes("name")) {
    return "names start with a letter or `_`";
  }
  if (found === "=" || found === ":") {
    return "settings take no `=` or `:`: write the name, a space, then the value, e.g. `memory 128 MiB`";
  }
  if (expected.startsWith("a value")) {
    return "give the setting a value, e.g. `memory 128 MiB` or `port 0x3f8`";
  }
  if (expected.includes('"}"')) {
    return "each setting is a name followed by a value, e.g. `memory 128 MiB`; blocks close with `}`";
  }
  for (const [pattern, hint] of EXPECTED_HINTS) if (pattern.test(expected)) return hint;
  return `write ${expected} here`;
}

/** How to write what the grammar expected, by the wording of its rule descriptions. */
const EXPECTED_HINTS: [RegExp, string][] = [
  [
    /^end of input/,
    "a file holds `import`, `let` and `machine` items; is there an extra `}`, or a setting outside its machine?",
  ],
  [/string in double quotes/, 'put the text in double quotes, e.g. "build/guest.elf"'],
  [/"extends"/, "a machine's name is followed by `{`, or by `extends BASE {`"],
  [/device kind/, "write the kind first, e.g. `device serial com1 { port 0x3f8 }`"],
  [/PCI address/, "PCI addresses are bus:device.function in hex, e.g. `00:02.0`"],
  [/^a name/, "names start with a letter or `_`, e.g. `com1`"],
  [/^"="/, "constants are written `let name = value`"],
  [/^"\{"/, "open the block with `{`"],
  [/range/, "write `base .. end` (end exclusive) or `base + size`, e.g. `0xC000_0000 .. 4 GiB`"],
  [
    /boot protocol/,
    'write `boot pvh "vmlinux"`, `boot linux "bzImage"` or `boot flat "image.bin"`',
  ],
  [/expression/, "write a number, a constant or arithmetic, e.g. `128 MiB` or `0x3f8 + 8`"],
  [/CPU feature/, "feature names are Linux's (/proc/cpuinfo), e.g. `cx16` or `x2apic`"],
  [/BAR kind/, "a BAR is `mem32`, `mem64` or `io`, then its size"],
];

/** The token starting at `pos`: a word, a number, a string or one character. */
function tokenAt(text: string, pos: number): string {
  if (pos >= text.length) return "";
  const rest = text.slice(pos, pos + 200);
  const m = /^(?:[A-Za-z0-9_]+|"[^"\n]*"?|\.\.|<<|>>|\S)/.exec(rest);
  return m ? m[0] : rest[0];
}

/** Offsets of lines that start (column 0) a top-level item, outside comments and strings. */
export function chunkStarts(text: string): number[] {
  const starts: number[] = [0];
  const n = text.length;
  let i = 0;
  let lineStart = true;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (lineStart && i > 0 && /^(?:import|let|machine)\b/.test(text.slice(i, i + 8))) {
      starts.push(i);
    }
    lineStart = false;
    if (c === 10 /* \n */) {
      lineStart = true;
      i++;
    } else if (c === 47 /* / */ && text.charCodeAt(i + 1) === 47) {
      const e = text.indexOf("\n", i);
      i = e < 0 ? n : e;
    } else if (c === 47 && text.charCodeAt(i + 1) === 42 /* * */) {
      const e = text.indexOf("*/", i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === 34 /* " */) {
      let j = i + 1;
      while (j < n && text[j] !== '"' && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      i = j + 1;
    } else {
      i++;
    }
  }
  return starts;
}

/** Ohm's failure on a whole text, cut into chunks so the rest of the file still counts. */
function recover(text: string, file: string, whole: ohm.FailedMatchResult): ParseResult {
  const r = parseChunks(text, file, (chunk, from) => ohmWhole(chunk, file, from));
  // Every chunk parses on its own, yet the whole does not: report the whole's failure.
  if (r.diagnostics.length === 0) r.diagnostics.push(syntaxError(failure(whole), text, file, 0));
  return r;
}

/**
 * A parser for editors: holds a document's text, follows its edits, and parses it on
 * demand. The fast parser re-reads the whole text (a 10k-line file in a few
 * milliseconds), and a syntax error costs Ohm only the broken chunk's few settings, so no
 * memo table needs to survive between keystrokes.
 */
export interface IncrementalParser {
  /** Replace the whole text. */
  setText(text: string): void;
  /** Replace text[startOffset, endOffset) with newText (offsets in UTF-16 units). */
  update(startOffset: number, endOffset: number, newText: string): void;
  text(): string;
  parse(): ParseResult;
}

export function createIncrementalParser(file = "<input>", text = ""): IncrementalParser {
  let current = text;
  return {
    setText(t) {
      current = t;
    },
    update(start, end, newText) {
      current = current.slice(0, start) + newText + current.slice(end);
    },
    text() {
      return current;
    },
    parse() {
      return parse(current, file);
    },
  };
}
