/**
 * Parsing: text → AST + syntax diagnostics. Never throws.
 *
 * The fast path lives in lang/parse_lean.ts (no ohm-js); this module is the Ohm side and
 * installs itself as its fallback when loaded. On a syntax error the parser still returns
 * a (partial) tree: the file is cut into top-level chunks at lines that start with
 * `import`, `let` or `machine`, each chunk is parsed on its own, and the chunks that parse
 * contribute their items. So one broken machine does not hide the symbols, hover and
 * checks of the rest of the file.
 */
import type * as ohm from "ohm-js";
import type { Program } from "./ast.ts";
import type { Diagnostic, Span } from "./diagnostics/types.ts";
import { getGrammar, getSemantics, spanContext } from "./syntax/grammar.ts";
import { fastParse, fastParseOrProgress } from "./syntax/fast_parse.ts";
import { suggest } from "./suggest.ts";
import { error } from "./diagnostics/make.ts";
import { KEYWORDS, UNITS } from "./syntax/keywords.ts";
import { depthChecked, installOhmFallback, type ParseResult } from "./parse_lean.ts";

export { parse } from "./parse_lean.ts";
export type { ParseResult } from "./parse_lean.ts";

// parse() (lang/parse_lean.ts) hands what the fast parser declines to Ohm from now on.
installOhmFallback((text, file) =>
  guarded(
    text,
    file,
    () => parseChunked(text, file, () => getGrammar().match(text, "Program")),
  )
);

/**
 * The error path, cheap on big files: each top-level chunk goes through the fast parser
 * and only chunks it declines go through Ohm, so one typo in a 10k-line file costs one
 * small Ohm match, not a whole-file one. Inside a broken machine Ohm only sees the few
 * settings before the failure (`ohmPiece`), and salvage tries the fast parser first, so
 * the cost follows the broken part, not the machine's size. `whole` is only run when
 * every chunk parses (the fast parser declined the file for a reason of its own, e.g.
 * non-ASCII text).
 */
function parseChunked(
  text: string,
  file: string,
  whole: () => ohm.MatchResult,
  mode: RecoveryMode = "fast",
): ParseResult {
  const chunks = parseChunks(
    text,
    file,
    (chunk, from) => matchPiece(chunk, file, from, mode),
    mode,
  );
  if (chunks.diagnostics.length === 0) return fromMatch(whole(), text, file);
  return chunks;
}

/**
 * The chunk loop of every recovery: each top-level chunk (`chunkStarts`) matched on its own
 * by `match`; a chunk that fails is reported (E0001) and what can be kept of it salvaged.
 * The tree spans the whole text; without a failing chunk the diagnostics are empty and the
 * caller decides (the whole text may still fail, or parse with another matcher).
 */
function parseChunks(
  text: string,
  file: string,
  match: (chunk: string, from: number) => PieceResult,
  mode: RecoveryMode,
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
      items.push(...r.items);
    } else {
      diagnostics.push(syntaxError(r, chunk, file, from));
      items.push(...salvage(chunk, r, file, from, mode));
    }
  }
  return {
    ast: { kind: "Program", items, span: { file, start: 0, end: text.length } },
    diagnostics,
  };
}

/**
 * How recovery parses a piece of text: "fast" (the default) tries the fast parser, then
 * Ohm on the part that matters (`ohmPiece`); "ohm" is the recovery as it was before, Ohm on
 * every declined piece, kept reachable so lang/recovery_test.ts can check that both give
 * identical trees and diagnostics.
 */
type RecoveryMode = "fast" | "ohm";

/** What recovery needs from one parse of a piece: its items, or Ohm's failure. */
type PieceResult =
  | { ok: true; items: Program["items"] }
  | { ok: false; pos: number; expected: string };

function matchPiece(text: string, file: string, from: number, mode: RecoveryMode): PieceResult {
  if (mode === "ohm") {
    const fast = fastParse(text, file, from);
    if (fast) return { ok: true, items: fast.items };
    return ohmWhole(text, file, from);
  }
  const fast = fastParseOrProgress(text, file, from);
  if (fast.program) return { ok: true, items: fast.program.items };
  return ohmPiece(text, file, from, fast.settingStarts);
}

function ohmWhole(text: string, file: string, from: number): PieceResult {
  const m = getGrammar().match(text, "Program");
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
): PieceResult {
  const k = settingStarts ? settingStarts.length - 1 : -1;
  if (settingStarts && k >= 3) {
    const cutFrom = settingStarts[0];
    const cutTo = settingStarts[k - 2];
    const m = getGrammar().match(text.slice(0, cutFrom) + text.slice(cutTo), "Program");
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
 * parse() with the recovery it had before the fast one (every declined chunk and every
 * salvage attempt matched whole by Ohm): internal, for lang/recovery_test.ts, which checks
 * that both give identical trees and diagnostics.
 */
export function parseWithOhmRecovery(text: string, file = "<input>"): ParseResult {
  const fast = fastParse(text, file);
  if (fast) return depthChecked({ ast: fast, diagnostics: [] }, text, file);
  return depthChecked(
    guarded(
      text,
      file,
      () => parseChunked(text, file, () => getGrammar().match(text, "Program"), "ohm"),
    ),
    text,
    file,
  );
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

/** The unit a misspelling most likely means: `mb`, `MB`, `Mib`, `M` → MiB. */
function unitFor(word: string): string | null {
  const w = word.toLowerCase().replace(/s$/, "");
  const first = { b: "B", k: "KiB", m: "MiB", g: "GiB", t: "TiB" }[w[0]];
  if (first && /^(?:b|byte|[kmgt]|[kmgt]i?b)$/.test(w)) return first;
  return suggest(word, UNITS.filter((u) => u !== "B"));
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
  const r = parseChunks(text, file, (chunk, from) => ohmWhole(chunk, file, from), "ohm");
  // Every chunk parses on its own, yet the whole does not: report the whole's failure.
  if (r.diagnostics.length === 0) r.diagnostics.push(syntaxError(failure(whole), text, file, 0));
  return r;
}

/**
 * Keeps what can be kept of a broken machine so the editor still sees its symbols: blank
 * out (with spaces, so offsets stay put) the line holding the last token before the
 * failure and try again, a few times; close an unclosed machine at the end. Machines
 * rebuilt this way are marked `recovered` and are not checked or lowered.
 */
function salvage(
  chunk: string,
  first: { pos: number },
  file: string,
  from: number,
  mode: RecoveryMode,
): Program["items"] {
  // Each attempt may be an Ohm match of the chunk: keep it for machines of editor size.
  if (!/^\s*machine\b/.test(chunk) || chunk.length > 32_000) return [];
  let text = chunk;
  let pos = first.pos;
  const headerEnd = chunk.indexOf("{");
  for (let attempt = 0; attempt < 8; attempt++) {
    if (pos >= text.trimEnd().length && !text.endsWith("}")) {
      text = text + "}";
    } else {
      let k = pos - 1;
      while (k > 0 && /\s/.test(text[k])) k--;
      const lineStart = text.lastIndexOf("\n", k) + 1;
      let lineEnd = text.indexOf("\n", k);
      if (lineEnd < 0) lineEnd = text.length;
      if (lineStart <= headerEnd) return [];
      text = text.slice(0, lineStart) + " ".repeat(lineEnd - lineStart) + text.slice(lineEnd);
    }
    // The whole-chunk parse of the old recovery; in "fast" mode the fast parser first
    // (same tree when it accepts) and Ohm only near the next failure.
    const r = mode === "ohm" ? ohmWhole(text, file, from) : matchPiece(text, file, from, mode);
    if (r.ok) {
      for (const it of r.items) if (it.kind === "Machine") it.recovered = true;
      return r.items;
    }
    pos = r.pos;
  }
  return [];
}

/**
 * An incremental parser for editors: keeps an Ohm Matcher whose memo table survives
 * edits, so re-parsing after a keystroke only re-does the work near the edit.
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
  const matcher = getGrammar().matcher();
  matcher.setInput(text);
  return {
    setText(t) {
      matcher.setInput(t);
    },
    update(start, end, newText) {
      matcher.replaceInputRange(start, end, newText);
    },
    text() {
      return matcher.getInput();
    },
    parse() {
      // The fast parser re-reads the whole text (cheaper than Ohm even incrementally);
      // broken chunks go through Ohm, and the Matcher (its memo table kept across edits)
      // answers when the whole file needs Ohm.
      const text = matcher.getInput();
      const fast = fastParse(text, file);
      if (fast) return depthChecked({ ast: fast, diagnostics: [] }, text, file);
      return depthChecked(
        guarded(text, file, () => parseChunked(text, file, () => matcher.match("Program"))),
        text,
        file,
      );
    },
  };
}
