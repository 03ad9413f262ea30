/**
 * Error recovery: a text that does not parse, read the way its author most likely meant it,
 * in one linear pass of the fast parser (lang/syntax/fast_parse.ts) with recovering hooks.
 *
 * - A word right after a number that is no unit but looks like one (`256 MB`, `4 gb`, `M`)
 *   is read as that unit and reported there ("unknown unit `MB`", did you mean `MiB`).
 * - A name written with `-` (`virtio-net`, `cmd-line`) is read with `_` and reported.
 * - A setting name followed by `=` or `:` (`memory = 128 MiB`) is read without it.
 * - A near-miss of a structure keyword starting a line that does not parse otherwise
 *   (`devcie serial com1 { ... }`) is read as the keyword.
 * - An unclosed `{` (found by matching braces with the help of indentation, as editors
 *   fold) is closed where its block ends: before the first line indented no deeper than
 *   the line that opened it; it is reported at the `{`.
 * - A setting that still does not parse is skipped up to the next line that can start a
 *   setting (matched blocks in between are skipped whole), and the rest is read on.
 *
 * Every such reading is a precise E0001 (`problems`); skipped text is `lost` (the caller
 * words the first failure with Ohm, and later ones from `lost`). Machines read this way
 * are marked `recovered` (checked, never lowered) and carry the spans they lost.
 */
import type * as A from "../ast.ts";
import type { Diagnostic, Span } from "../diagnostics/types.ts";
import { error } from "../diagnostics/make.ts";
import { suggest } from "../suggest.ts";
import { type BlockKind, GIVE_UP, isIdent, isIdentStart, MAX_DEPTH, Parser } from "./fast_parse.ts";
import { STRUCTURE_KEYWORDS } from "./keywords.ts";
import { unitFor } from "./literals.ts";
import { Braces } from "./braces.ts";

/** Text recovery skipped: from `start` to `end`; `failAt` is where it stopped matching. */
export interface Lost {
  start: number;
  end: number;
  failAt: number;
  /** The block it was in ("top" between items). */
  block: BlockKind | "top";
  /** Whether the text stopped matching at the very start of the skipped item. */
  atStart: boolean;
}

export interface Recovery {
  items: A.Item[];
  /** The readings recovery is sure of, each an E0001 with a hint (and a fix where certain). */
  problems: Diagnostic[];
  lost: Lost[];
}

/** Reads `text` (a chunk of `file` starting at `offset`) with recovery. Never throws. */
export function recoverParse(text: string, file: string, offset = 0): Recovery {
  const p = new RecoveringParser(text, file, offset);
  let items: A.Item[] = [];
  try {
    items = p.program().items;
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    // Nested too deeply for the stack: what was read before is kept.
    items = p.done;
  }
  return { items, problems: p.problems, lost: p.lost };
}

export { unitFor } from "./literals.ts";

const UNIT_LIST = "B, KiB, MiB, GiB and TiB";
const STRUCT_KW: readonly string[] = STRUCTURE_KEYWORDS;

class RecoveringParser extends Parser {
  readonly problems: Diagnostic[] = [];
  readonly lost: Lost[] = [];
  /** Items read so far (kept if the stack runs out). */
  readonly done: A.Item[] = [];
  private braces: Braces;
  /** The machine being read: what it lost, whether recovery changed anything in it. */
  private machineState: { lost: Span[]; touched: boolean } | null = null;

  /** The whole text (blocks are read with `s` cut at their end). */
  private readonly full: string;

  constructor(s: string, file: string, offset: number) {
    super(s, file, offset);
    this.lenient = true;
    this.full = s;
    this.braces = new Braces(s);
  }

  /**
   * Spaces and comments, as the grammar reads them, except that an unterminated comment
   * runs to the end and a character the grammar has no place for (non-ASCII outside
   * strings and comments) stops here, to be skipped with the item it is in.
   */
  protected override ws() {
    try {
      super.ws();
      return;
    } catch (e) {
      if (e !== GIVE_UP) throw e;
    }
    const s = this.s;
    const n = s.length;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (p < n && c <= 32) p++;
      else if (c === 47 && s.charCodeAt(p + 1) === 47) {
        const e = s.indexOf("\n", p + 2);
        p = e < 0 ? n : e;
      } else if (c === 47 && s.charCodeAt(p + 1) === 42) {
        const e = s.indexOf("*/", p + 2);
        p = e < 0 ? n : e + 2;
      } else break;
    }
    this.pos = p;
    if (p > this.furthest) this.furthest = p;
  }

  /** Keys of `problems`: backtracking reads the same text more than once. */
  private seen = new Set<string>();

  private problem(d: Diagnostic) {
    const key = `${d.span!.start}|${d.message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.problems.push(d);
    if (this.machineState) this.machineState.touched = true;
  }

  /** Forgets the problems from index `from` on (an item read again, or skipped). */
  private dropProblems(from: number): Diagnostic[] {
    const dropped = this.problems.splice(from);
    for (const d of dropped) this.seen.delete(`${d.span!.start}|${d.message}`);
    return dropped;
  }

  private lose(start: number, end: number, failAt: number, block: BlockKind | "top") {
    if (this.tooDeep >= start) {
      // Given up for its depth: say so, at the parenthesis too many.
      this.problem(
        error(
          "E0001",
          `this expression is nested too deeply (more than ${MAX_DEPTH} parentheses)`,
          this.span(this.tooDeep, this.tooDeep + 1),
          "split the expression with `let` constants",
        ),
      );
    }
    this.tooDeep = -1;
    this.lost.push({ start, end, failAt, block, atStart: failAt <= start });
    if (this.machineState) {
      this.machineState.touched = true;
      this.machineState.lost.push(this.span(start, end));
    }
  }

  override program(): A.Program {
    for (;;) {
      this.ws();
      if (this.pos >= this.s.length) break;
      const start = this.pos;
      this.furthest = start;
      const w = this.peekWord();
      try {
        if (w === "import") this.done.push(this.importItem());
        else if (w === "let") this.done.push(this.letItem());
        else if (w === "machine") this.done.push(this.machine());
        else throw GIVE_UP;
      } catch (e) {
        if (e !== GIVE_UP) throw e;
        this.depth = 0;
        const resume = this.nextItem(start);
        this.lose(start, resume, Math.max(this.furthest, start), "top");
        this.pos = resume;
      }
    }
    return { kind: "Program", items: this.done, span: this.span(0, this.s.length) };
  }

  /** The next line that starts with `import`, `let` or `machine` (or the end). */
  private nextItem(from: number): number {
    const re = /\n[ \t]*(?=(?:import|let|machine)(?![A-Za-z0-9_]))/g;
    re.lastIndex = from;
    const m = re.exec(this.s);
    return m ? m.index + m[0].length : this.s.length;
  }

  /** A `let` whose value does not parse keeps its name, with no value. */
  protected override letItem(): A.Let {
    const start = this.pos;
    this.keyword("let");
    const name = this.needName(new Set(STRUCT_KW));
    let value: A.Expr | null = null;
    const afterName = this.pos;
    if (this.lit("=")) {
      try {
        value = this.expr();
      } catch (e) {
        if (e !== GIVE_UP) throw e;
        this.depth = 0;
      }
    }
    // The value must end its line: `let a = 1 +` read as `1` would be a wrong value.
    if (value && !this.lineEndsHere()) {
      this.ws();
      this.danglingOperator(this.pos);
      value = null;
    }
    if (!value) {
      const resume = this.nextItem(start);
      this.lose(afterName, resume, Math.max(this.furthest, afterName), "top");
      this.pos = resume;
      return { kind: "Let", name, value: null, span: this.span(start, afterName) };
    }
    return { kind: "Let", name, value, span: this.span(start, this.pos) };
  }

  /** Nothing but spaces and comments before the end of the line (or of the text). */
  private lineEndsHere(): boolean {
    const save = this.pos;
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (Number.isNaN(c) || c === 10) break;
      if (c === 32 || c === 9 || c === 13) p++;
      else if (c === 47 && s.charCodeAt(p + 1) === 47) break;
      else if (c === 47 && s.charCodeAt(p + 1) === 42) {
        const e = s.indexOf("*/", p + 2);
        if (e < 0) break;
        p = e + 2;
      } else {
        this.pos = save;
        return false;
      }
    }
    this.pos = save;
    return true;
  }

  protected override machine(): A.Machine {
    const outer = this.machineState;
    const state = { lost: [] as Span[], touched: false };
    this.machineState = state;
    try {
      const m = super.machine();
      if (state.touched) {
        m.recovered = true;
        m.lost = state.lost;
      }
      return m;
    } finally {
      this.machineState = outer;
    }
  }

  /** A missing `{` after a machine's name: read its settings anyway (Ohm reports it). */
  protected override open(): number {
    if (this.lit("{")) return this.pos - 1;
    if (this.machineState) this.machineState.touched = true;
    return -1;
  }

  protected override block(open: number, what: BlockKind): unknown[] {
    const saved = this.s;
    const close = open >= 0 ? this.braces.closeOf(open) : -1;
    const end = close >= 0
      ? close
      : open >= 0
      ? this.braces.implicitEnd(open, saved.length)
      : saved.length;
    const out: unknown[] = [];
    let closedBy = -1; // after a `)` read as this block's `}`
    this.s = saved.slice(0, end);
    try {
      for (;;) {
        this.ws();
        if (this.pos >= this.s.length) break;
        const start = this.pos;
        this.furthest = start;
        if (this.s.charCodeAt(start) === 125) {
          // A `}` that closes nothing here.
          this.lose(start, start + 1, start, what);
          this.pos = start + 1;
          continue;
        }
        const c = this.s.charCodeAt(start);
        if (close < 0 && open >= 0 && (c === 41 || c === 93)) {
          // `{ cmdline "x" )`: a `)` or `]` where this unclosed block's `}` goes.
          this.wrongCloser(open, start);
          this.pos = start + 1;
          closedBy = start + 1;
          break;
        }
        if (this.danglingOperator(start)) {
          const resume = this.resync(start, start);
          this.lose(start, resume, start, what);
          this.pos = resume;
          continue;
        }
        const depth = this.depth;
        const problems = this.problems.length;
        try {
          out.push(this.readItem(what));
        } catch (e) {
          if (e !== GIVE_UP) throw e;
          this.depth = depth;
          this.dropProblems(problems); // a skipped item reports nothing of its own
          const failAt = Math.max(this.furthest, start);
          const resume = this.resync(start, failAt);
          this.lose(start, resume, failAt, what);
          this.pos = resume;
        }
      }
    } finally {
      this.s = saved;
    }
    if (close >= 0) {
      this.pos = close + 1;
    } else if (closedBy >= 0) {
      this.pos = closedBy;
    } else {
      // Unclosed: the block ends before the line that is indented like its `{` line.
      let e = end;
      while (e > 0 && /\s/.test(saved[e - 1])) e--;
      this.pos = Math.max(this.pos > end ? end : this.pos, Math.min(e, end));
      if (open >= 0) this.unclosed(open, end, what);
      // An unclosed machine may go on past where its text ends: it may lack nothing.
      if (what === "machine" && this.machineState) this.machineState.lost.push(this.span(end, end));
    }
    return out;
  }

  /**
   * One item of a block. A machine setting that starts with a near-miss of a structure
   * keyword (`devcie serial com1 { ... }`) and does not read as a property to the end of
   * its line is read as that keyword, when it then does.
   */
  private readItem(what: BlockKind): unknown {
    const item = () => this.blockItem(what);
    if (what !== "machine") return item();
    const start = this.pos;
    const word = this.peekWord();
    const kw = word && !STRUCT_KW.includes(word) ? suggest(word, STRUCT_KW) : null;
    if (!kw) return item();
    const problems = this.problems.length;
    const lost = this.lost.length;
    let first: unknown = null;
    try {
      first = item();
      if (this.lineEndsHere()) return first;
    } catch (e) {
      if (e !== GIVE_UP) throw e;
    }
    const afterFirst = this.pos;
    const firstProblems = this.dropProblems(problems);
    const firstLost = this.lost.splice(lost);
    this.pos = start + word.length;
    try {
      const node = this.structured(kw);
      if (!this.lineEndsHere() && this.s.charCodeAt(this.pos) !== 125) throw GIVE_UP;
      node.span = this.span(start, this.pos);
      const wspan = this.span(start, start + word.length);
      this.problem(
        error(
          "E0001",
          `\`${word}\` is not a keyword`,
          wspan,
          `did you mean \`${kw}\`? A line starting with \`${word}\` reads as a setting named \`${word}\``,
          [{ span: wspan, message: `read as \`${kw}\`` }],
          [{ title: `change to \`${kw}\``, span: wspan, replacement: kw }],
        ),
      );
      return node;
    } catch (e) {
      if (e !== GIVE_UP) throw e;
      // Not that either: the first reading stands.
      this.dropProblems(problems);
      for (const d of firstProblems) this.problem(d);
      this.lost.splice(lost, Infinity, ...firstLost);
      this.pos = afterFirst;
      if (first !== null) return first;
      throw GIVE_UP;
    }
  }

  /**
   * Where to read on after an item that does not parse: the first later line whose first
   * token can start an item (a name or `}`), at or after where it stopped matching;
   * matched blocks in between are skipped whole.
   */
  private resync(start: number, failAt: number): number {
    const s = this.s;
    const n = s.length;
    let i = start;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 34) {
        let j = i + 1;
        while (j < n && s.charCodeAt(j) !== 34 && s.charCodeAt(j) !== 10) {
          j += s.charCodeAt(j) === 92 ? 2 : 1;
        }
        i = j < n && s.charCodeAt(j) === 34 ? j + 1 : j;
      } else if (c === 47 && s.charCodeAt(i + 1) === 47) {
        const e = s.indexOf("\n", i);
        i = e < 0 ? n : e;
      } else if (c === 47 && s.charCodeAt(i + 1) === 42) {
        const e = s.indexOf("*/", i + 2);
        i = e < 0 ? n : e + 2;
      } else if (c === 123) {
        const close = this.braces.closeOf(i);
        i = close >= 0 && close < n ? close + 1 : i + 1;
      } else if (c === 125 && i > start) {
        return i;
      } else if (c === 10) {
        let j = i + 1;
        while (
          j < n && (s.charCodeAt(j) === 32 || s.charCodeAt(j) === 9 || s.charCodeAt(j) === 13)
        ) {
          j++;
        }
        const d = s.charCodeAt(j);
        if (j >= failAt && (isIdentStart(d) || d === 125)) return j;
        i = j;
      } else {
        i++;
      }
    }
    return n;
  }

  /** E0001 for a `)` or `]` at `at` that most likely closes the block opened at `open`. */
  private wrongCloser(open: number, at: number) {
    const sign = this.s[at];
    const wspan = this.span(at, at + 1);
    this.problem(
      error(
        "E0001",
        `expected \`}\` to close the block, found \`${sign}\``,
        wspan,
        "blocks open with `{` and close with `}`",
        [
          { span: wspan, message: "read as `}`" },
          { span: this.span(open, open + 1), message: "the block opened here" },
        ],
        [{ title: "change to `}`", span: wspan, replacement: "}" }],
      ),
    );
  }

  /**
   * A binary operator at `at`, right after a value on the same line, with nothing after it
   * on its line (`let port = 0x3f8 +`): the value's right operand is missing. Reported
   * there; true when it is one.
   */
  private danglingOperator(at: number): boolean {
    const s = this.s;
    const op = /^(?:<<|>>|\+|-|\*|\/(?![/*]))/.exec(s.slice(at, at + 2))?.[0];
    if (!op) return false;
    let b = at - 1;
    while (b >= 0 && (s.charCodeAt(b) === 32 || s.charCodeAt(b) === 9)) b--;
    const before = s.charCodeAt(b);
    if (b < 0 || !(isIdent(before) || before === 41 || before === 34)) return false;
    const save = this.pos;
    this.pos = at + op.length;
    const ends = this.lineEndsHere();
    this.pos = save;
    if (!ends) return false;
    this.problem(
      error(
        "E0001",
        `\`${op}\` has no value on its right`,
        this.span(at, at + op.length),
        `an expression may continue on the next line, but not into the next setting or item: give \`${op}\` its right operand, or remove it`,
        [{ span: this.span(at, at + op.length), message: "nothing follows on this line" }],
      ),
    );
    return true;
  }

  private unclosed(open: number, end: number, what: BlockKind) {
    const s = this.full;
    const brace = this.span(open, open + 1);
    let next = end;
    while (next < s.length && /\s/.test(s[next])) next++;
    const labels = [{ span: brace, message: "this `{` has no `}`" }];
    const word = /^[A-Za-z0-9_]+|^\S/.exec(s.slice(next, next + 80))?.[0] ?? "";
    labels.push({
      span: this.span(next, next + word.length),
      message: next >= s.length
        ? what === "machine" ? "the machine's text ends here" : "the text ends here"
        : "the block should end before this line",
    });
    this.problem(
      error(
        "E0001",
        "unclosed `{`",
        brace,
        what === "machine"
          ? "close the machine with `}` after its last setting"
          : "close the block with `}` after its last setting, e.g. `{ port 0x3f8 }`",
        labels,
      ),
    );
  }

  protected override unitAfter(word: string): A.Unit | null {
    if (!word) return null;
    const unit = unitFor(word) as A.Unit | null;
    if (!unit) return null;
    const s = this.s;
    // The unit sits on the number's line, and nothing that could start a setting follows it.
    let b = this.pos - 1;
    while (b >= 0 && (s.charCodeAt(b) === 32 || s.charCodeAt(b) === 9)) b--;
    if (b < 0 || !(isIdent(s.charCodeAt(b)) || s.charCodeAt(b) === 41)) return null;
    let a = this.pos + word.length;
    while (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9 || s.charCodeAt(a) === 13) a++;
    const c = s.charCodeAt(a);
    const ends = Number.isNaN(c) || c === 10 || c === 125 || c === 47 || c === 41 ||
      c === 43 || c === 45 || c === 42 || c === 60 || c === 62 ||
      (c === 46 && s.charCodeAt(a + 1) === 46);
    if (!ends) return null;
    const wspan = this.span(this.pos, this.pos + word.length);
    this.problem(
      error(
        "E0001",
        `unknown unit \`${word}\``,
        wspan,
        `did you mean \`${unit}\`? Units are ${UNIT_LIST}: binary, and written in this case`,
        [{ span: wspan, message: `read as \`${unit}\`` }],
        [{ title: `change to \`${unit}\``, span: wspan, replacement: unit }],
      ),
    );
    return unit;
  }

  protected override itemName(what: string): A.Ident {
    const n = this.needName();
    const s = this.s;
    let e = this.pos;
    if (s.charCodeAt(e) !== 45 || !isIdentStart(s.charCodeAt(e + 1))) return n;
    // `virtio-net`: words glued with `-` where a name goes.
    while (s.charCodeAt(e) === 45 && isIdent(s.charCodeAt(e + 1))) {
      e += 2;
      while (isIdent(s.charCodeAt(e))) e++;
    }
    const start = n.span.start - this.offset;
    const raw = s.slice(start, e);
    const fixed = raw.replaceAll("-", "_");
    const wspan = this.span(start, e);
    this.problem(
      error(
        "E0001",
        `\`${raw}\` is not a ${what}: names use \`_\`, not \`-\``,
        wspan,
        `did you mean \`${fixed}\`? Names are letters, digits and \`_\``,
        [{ span: wspan, message: `read as \`${fixed}\`` }],
        [{ title: `change to \`${fixed}\``, span: wspan, replacement: fixed }],
      ),
    );
    this.pos = e;
    return { kind: "Ident", name: fixed, span: wspan };
  }

  protected override afterPropName(): void {
    const save = this.pos;
    this.ws();
    const c = this.s.charCodeAt(this.pos);
    if ((c === 61 && this.s.charCodeAt(this.pos + 1) !== 61) || c === 58) {
      const at = this.pos;
      const sign = this.s[at];
      let e = at + 1;
      while (this.s.charCodeAt(e) === 32 || this.s.charCodeAt(e) === 9) e++;
      this.problem(
        error(
          "E0001",
          `a setting takes no \`${sign}\``,
          this.span(at, at + 1),
          "settings take no `=` or `:`: write the name, a space, then the value, e.g. `memory 128 MiB`",
          [{ span: this.span(at, at + 1), message: "remove this" }],
          [{ title: `remove \`${sign}\``, span: this.span(at, e), replacement: "" }],
        ),
      );
      this.pos = at + 1;
      return;
    }
    this.pos = save;
  }
}
