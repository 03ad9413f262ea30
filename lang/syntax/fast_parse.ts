/**
 * A hand-written recursive-descent parser for the happy path.
 *
 * Why: Ohm allocates a memo entry per rule application per position; on this machine that
 * parses 75-350 KiB/s, so a 10k-line file took seconds. This parser follows
 * lang/syntax/vmdesc.ohm rule for rule (same ordered choices, same backtracking) and builds
 * the very same AST, spans included, ~80× faster on the examples and 110-150× on 1k- and
 * 10k-line files (`deno task bench lang` times both on the same files, side by side).
 *
 * The Ohm grammar stays the specification: this parser only ever *accepts*. Whenever it
 * meets anything it is not sure about (a syntax error, an unterminated comment) it gives
 * up and returns null, and the caller runs Ohm, which produces the diagnostics. lang/syntax/fast_parse_test.ts checks on the examples,
 * the diagnostic cases and thousands of mutated inputs that both parsers accept exactly
 * the same texts and build identical trees.
 *
 * Why one file of ~670 lines: the parser is one class with a method per grammar rule, the
 * methods calling each other as the rules do, and recover.ts subclasses it to hook a few
 * of them. Cut into files, rules the grammar keeps side by side would be read apart from
 * each other and from vmdesc.ohm's order. What is not a rule lives elsewhere: the word
 * lists (keywords.ts), literals (literals.ts), recovery (recover.ts, braces.ts).
 */
import type * as A from "../ast.ts";
import { decodeString as decode, parseIntLiteral } from "./literals.ts";
import { type KEYWORDS, RESERVED_WORDS, STRUCTURE_KEYWORDS, UNITS } from "./keywords.ts";

// The grammar's own word lists (generated from vmdesc.ohm by lang/syntax/gen.ts).
const RESERVED = new Set<string>(RESERVED_WORDS);
const STRUCT_KW = new Set<string>(STRUCTURE_KEYWORDS);
const VALUE_KW = STRUCT_KW; // the grammar's `valueKw = structKw`
const UNIT_WORDS = new Set<string>(UNITS);

class GiveUp {}
/** Thrown where the grammar does not match: the caller decides (Ohm, or recovery). */
export const GIVE_UP = new GiveUp();

export function isIdent(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;
}
export function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}
function isAlnum(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57);
}

/** Parses `text`; returns the Program, or null when Ohm must decide. */
export function fastParse(text: string, file: string, offset = 0): A.Program | null {
  try {
    return new Parser(text, file, offset).program();
  } catch (e) {
    if (e === GIVE_UP) return null;
    throw e;
  }
}

/**
 * For error recovery (lang/parse.ts): like fastParse, and when it declines inside a machine
 * body, `settingStarts` holds the offsets (in `text`) where that body's settings start, the
 * last one being where it gave up (a broken setting, or where a setting or `}` was due).
 * Ohm then only needs to see the last few settings before the failure: see
 * lang/parse.ts `ohmPiece`.
 */
export function fastParseOrProgress(
  text: string,
  file: string,
  offset = 0,
):
  | { program: A.Program; settingStarts: null; furthest: number }
  | { program: null; settingStarts: number[] | null; furthest: number } {
  const p = new Parser(text, file, offset);
  try {
    return { program: p.program(), settingStarts: null, furthest: p.furthest };
  } catch (e) {
    if (e === GIVE_UP) {
      return { program: null, settingStarts: p.settingStarts, furthest: p.furthest };
    }
    throw e;
  }
}

/**
 * Parentheses nested deeper than this are left to the error path (which refuses them):
 * as deep as lang/parse_lean.ts lets a tree be, so no text the language accepts is ever
 * declined for its depth alone.
 */
export const MAX_DEPTH = 500;

/**
 * The grammar, rule for rule. Error recovery (lang/syntax/recover.ts) extends it: the
 * protected hooks (`block`, `unitAfter`, `itemName`, `afterPropName`) are where a broken
 * text is read as the user most likely meant it; here they follow the grammar exactly.
 */
export class Parser {
  pos = 0;
  protected depth = 0;
  /** Starts of the settings of the machine body being parsed (see fastParseOrProgress). */
  settingStarts: number[] | null = null;
  /** The furthest position a token was looked for at: where the text stopped matching. */
  furthest = 0;
  /** Where parentheses went deeper than MAX_DEPTH, if they did. */
  tooDeep = -1;
  /**
   * Whether the recovering hooks run (lang/syntax/recover.ts sets it). A field test on the
   * hot path costs less than a call per token for the valid files that never need them.
   */
  protected lenient = false;
  /** `offset`: where `s` starts in the file (chunks of a file parsed one by one). */
  constructor(protected s: string, protected file: string, protected offset: number) {}

  protected span(start: number, end: number): A.Span {
    return { file: this.file, start: start + this.offset, end: end + this.offset };
  }

  /** Ohm's `spaces`: chars <= 0x20 and comments. */
  protected ws() {
    const s = this.s;
    const n = s.length;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (p < n && c <= 32) {
        p++;
      } else if (c === 47 && s.charCodeAt(p + 1) === 47) {
        const e = s.indexOf("\n", p + 2);
        p = e < 0 ? n : e;
      } else if (c === 47 && s.charCodeAt(p + 1) === 42) {
        const e = s.indexOf("*/", p + 2);
        if (e < 0) {
          this.furthest = n; // unterminated: let Ohm decide what it is (it reads to the end)
          throw GIVE_UP;
        }
        p = e + 2;
      } else break; // (non-ASCII is no space either: the next token fails on it, as in Ohm)
    }
    this.pos = p;
    if (p > this.furthest) this.furthest = p;
  }

  /** The identifier-like word at pos (after spaces), without consuming it; "" if none. */
  protected peekWord(): string {
    this.ws();
    const s = this.s;
    let e = this.pos;
    if (!isIdentStart(s.charCodeAt(e))) return "";
    while (isIdent(s.charCodeAt(e))) e++;
    return s.slice(this.pos, e);
  }

  /** A keyword rule: "kw" ~identPart. */
  // Every "try" below leaves pos unchanged when it fails, so a node's span never takes
  // in the spaces after it (Ohm's spans end at the last token).
  protected keyword(kw: (typeof KEYWORDS)[number]): boolean {
    const save = this.pos;
    this.ws();
    if (!this.s.startsWith(kw, this.pos) || isIdent(this.s.charCodeAt(this.pos + kw.length))) {
      this.pos = save;
      return false;
    }
    this.pos += kw.length;
    return true;
  }

  protected lit(t: string): boolean {
    const save = this.pos;
    this.ws();
    if (!this.s.startsWith(t, this.pos)) {
      this.pos = save;
      return false;
    }
    this.pos += t.length;
    return true;
  }

  protected expect(t: string) {
    if (!this.lit(t)) throw GIVE_UP;
  }

  /** `name`: an identifier that is not reserved; extra: words excluded by the caller's `~`. */
  protected name(exclude?: Set<string>): A.Ident | null {
    const save = this.pos;
    const w = this.peekWord();
    if (!w || RESERVED.has(w) || exclude?.has(w)) {
      this.pos = save;
      return null;
    }
    const start = this.pos;
    this.pos += w.length;
    return { kind: "Ident", name: w, span: this.span(start, this.pos) };
  }

  protected needName(exclude?: Set<string>): A.Ident {
    const n = this.name(exclude);
    if (!n) throw GIVE_UP;
    return n;
  }

  protected string(): A.StringLit | null {
    const save = this.pos;
    this.ws();
    const s = this.s;
    if (s.charCodeAt(this.pos) !== 34) {
      this.pos = save;
      return null;
    }
    const start = this.pos;
    let p = start + 1;
    for (;;) {
      const c = s.charCodeAt(p);
      if (p >= s.length || c === 10) {
        this.furthest = Math.max(this.furthest, p); // unterminated string: read to here
        throw GIVE_UP;
      }
      if (c === 92) {
        if (p + 1 >= s.length) {
          this.furthest = Math.max(this.furthest, p);
          throw GIVE_UP;
        }
        // `"\\" any`: any is a code point.
        const hi = s.charCodeAt(p + 1);
        p += hi >= 0xd800 && hi <= 0xdbff ? 3 : 2;
        continue;
      }
      if (c === 34) break;
      p++;
    }
    this.pos = p + 1;
    const raw = s.slice(start, this.pos);
    return { kind: "String", value: decode(raw), raw, span: this.span(start, this.pos) };
  }

  program(): A.Program {
    const items: A.Item[] = [];
    for (;;) {
      this.ws();
      if (this.pos >= this.s.length) break;
      const w = this.peekWord();
      if (w === "import") items.push(this.importItem());
      else if (w === "let") items.push(this.letItem());
      else if (w === "machine") items.push(this.machine());
      else throw GIVE_UP;
    }
    return { kind: "Program", items, span: this.span(0, this.s.length) };
  }

  protected importItem(): A.Import {
    const start = this.pos;
    this.keyword("import");
    const path = this.string();
    if (!path) throw GIVE_UP;
    return { kind: "Import", path, span: this.span(start, this.pos) };
  }

  protected letItem(): A.Let {
    const start = this.pos;
    this.keyword("let");
    const name = this.needName(STRUCT_KW);
    this.expect("=");
    const value = this.expr();
    if (!value) throw GIVE_UP;
    return { kind: "Let", name, value, span: this.span(start, this.pos) };
  }

  protected machine(): A.Machine {
    const start = this.pos;
    this.keyword("machine");
    const name = this.needName();
    let base: A.Ident | null = null;
    if (this.keyword("extends")) base = this.needName();
    const open = this.open();
    this.settingStarts = [];
    const settings = this.block(open, "machine") as A.Setting[];
    this.settingStarts = null;
    return { kind: "Machine", name, base, settings, span: this.span(start, this.pos) };
  }

  /** `{`: its position (the grammar needs it; recovery reads on without it). */
  protected open(): number {
    this.expect("{");
    return this.pos - 1;
  }

  /** The items of a block of kind `what` whose `{` is at `open`, through its `}`. */
  protected block(_open: number, what: BlockKind): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.pos) === 125) break;
      out.push(this.blockItem(what));
    }
    this.pos++;
    return out;
  }

  /**
   * One item of a block of kind `what`. (A switch, not a callback per block: one call site
   * for four kinds of item kept the hot loop from being inlined.)
   */
  protected blockItem(what: BlockKind): unknown {
    switch (what) {
      case "machine":
        this.settingStarts?.push(this.pos);
        return this.setting();
      case "body":
        return this.peekWord() === "bar" ? this.bar() : this.prop();
      case "pci_hole":
        return this.peekWord() === "ecam" ? this.ecam() : this.prop();
      case "cpuid":
        return this.cpuidItem();
    }
  }

  protected setting(): A.Setting {
    const w = this.peekWord();
    switch (w) {
      case "pci_hole":
      case "device":
      case "pci":
      case "boot":
      case "cpuid":
        return this.structured(w);
    }
    // `~structKw Prop`: a failed structured setting never falls back to a Prop.
    return this.prop();
  }

  /**
   * The structured setting `kw` (pci_hole, device, pci, boot, cpuid) at pos. Each reads
   * its keyword if it is there; recovery calls this past a misspelt one.
   */
  protected structured(kw: string): A.Setting {
    switch (kw) {
      case "pci_hole":
        return this.pciHole();
      case "device":
        return this.device();
      case "pci":
        return this.pci();
      case "boot":
        return this.boot();
      default:
        return this.cpuid();
    }
  }

  protected prop(): A.Prop {
    const start = this.pos;
    const name = this.lenient ? this.itemName("property") : this.needName();
    if (this.lenient) this.afterPropName();
    const value = this.value();
    if (!value) throw GIVE_UP;
    return { kind: "Prop", name, value, span: this.span(start, this.pos) };
  }

  private pciHole(): A.PciHole {
    const start = this.pos;
    this.keyword("pci_hole");
    const range = this.range();
    if (!range) throw GIVE_UP;
    let body: A.HoleItem[] | null = null;
    if (this.lit("{")) {
      body = this.block(this.pos - 1, "pci_hole") as A.HoleItem[];
    }
    return { kind: "PciHole", range, body, span: this.span(start, this.pos) };
  }

  private ecam(): A.Ecam {
    const start = this.pos;
    this.keyword("ecam");
    const base = this.expr();
    if (!base) throw GIVE_UP;
    let end = this.pos;
    let buses: A.RangeExpr | A.AutoBuses | null = null;
    // EcamBuses? backtracks as a whole when `buses` is not followed by a bus spec.
    const save = this.pos;
    if (this.keyword("buses")) {
      if (this.keyword("auto")) {
        buses = { kind: "Auto", span: this.span(this.pos - 4, this.pos) };
      } else {
        buses = this.range();
      }
      if (buses) end = this.pos;
      else this.pos = save;
    }
    return { kind: "Ecam", base, buses, span: this.span(start, end) };
  }

  private device(): A.Device {
    const start = this.pos;
    this.keyword("device");
    const deviceKind = this.lenient ? this.itemName("device kind") : this.needName();
    let name: A.Ident | null = null;
    const save = this.pos;
    const n = this.name(STRUCT_KW);
    if (n) {
      this.ws();
      if (this.s.charCodeAt(this.pos) === 123) name = n;
      else this.pos = save;
    }
    const body = this.body();
    return { kind: "Device", deviceKind, name, body, span: this.span(start, this.pos) };
  }

  private pci(): A.Pci {
    const start = this.pos;
    this.keyword("pci");
    this.ws();
    const astart = this.pos;
    const aend = this.pciAddress();
    if (aend < 0) throw GIVE_UP;
    this.pos = aend;
    const address: A.PciAddress = {
      kind: "PciAddress",
      raw: this.s.slice(astart, aend),
      span: this.span(astart, aend),
    };
    const deviceKind = this.lenient ? this.itemName("device kind") : this.needName();
    const body = this.body();
    return { kind: "Pci", address, deviceKind, body, span: this.span(start, this.pos) };
  }

  /** End of a pciAddress at pos (segment form first, then plain), or -1. */
  private pciAddress(): number {
    const s = this.s;
    const run = (p: number): number => {
      let e = p;
      for (;;) {
        const c = s.charCodeAt(e);
        if (isAlnum(c)) e++;
        else if (c > 127) {
          // Ohm's alnum is any Unicode letter (by code point) or an ASCII digit.
          const cp = s.codePointAt(e)!;
          if (!LETTER.test(String.fromCodePoint(cp))) break;
          e += cp > 0xffff ? 2 : 1;
        } else break;
      }
      return e;
    };
    const seq = (p: number, seps: number[]): number => {
      let e = run(p);
      if (e === p) return -1;
      for (const sep of seps) {
        if (s.charCodeAt(e) !== sep) return -1;
        const q = run(e + 1);
        if (q === e + 1) return -1;
        e = q;
      }
      return e;
    };
    const seg = seq(this.pos, [58, 58, 46]);
    return seg >= 0 ? seg : seq(this.pos, [58, 46]);
  }

  private boot(): A.Boot {
    const start = this.pos;
    this.keyword("boot");
    const protocol = this.needName();
    const path = this.string();
    if (!path) throw GIVE_UP;
    const body = this.body();
    return { kind: "Boot", protocol, path, body, span: this.span(start, this.pos) };
  }

  private body(): A.BodyItem[] | null {
    if (!this.lit("{")) return null;
    return this.block(this.pos - 1, "body") as A.BodyItem[];
  }

  private bar(): A.Bar {
    const start = this.pos;
    this.keyword("bar");
    const index = this.expr();
    if (!index) throw GIVE_UP;
    const barKind = this.needName();
    const size = this.expr();
    if (!size) throw GIVE_UP;
    let prefetchable: A.Ident | null = null;
    if (this.keyword("prefetchable")) {
      prefetchable = {
        kind: "Ident",
        name: "prefetchable",
        span: this.span(this.pos - 12, this.pos),
      };
    }
    return { kind: "Bar", index, barKind, size, prefetchable, span: this.span(start, this.pos) };
  }

  private cpuid(): A.Cpuid {
    const start = this.pos;
    this.keyword("cpuid");
    const open = this.open();
    const items = this.block(open, "cpuid") as A.CpuidHide[];
    return { kind: "Cpuid", items, span: this.span(start, this.pos) };
  }

  private cpuidItem(): A.CpuidHide {
    const istart = this.pos;
    if (!this.keyword("hide")) throw GIVE_UP;
    const features: A.Ident[] = [];
    for (;;) {
      const f = this.name(HIDE);
      if (!f) break;
      features.push(f);
    }
    if (!features.length) throw GIVE_UP;
    return {
      kind: "CpuidHide",
      features,
      // The last feature's span is already shifted by the offset: take it off again.
      span: this.span(istart, features[features.length - 1].span.end - this.offset),
    };
  }

  /** Value = bool | Range | Expr (ordered; a string is a Primary). */
  private value(): A.Value | null {
    const w = this.peekWord();
    if (w === "true" || w === "false") {
      const start = this.pos;
      this.pos += w.length;
      return { kind: "Bool", value: w === "true", span: this.span(start, this.pos) };
    }
    const save = this.pos;
    const r = this.range();
    if (r) return r;
    this.pos = save;
    return this.expr();
  }

  /** Range = Expr ".." Expr | Mul "+" Expr. Restores pos and returns null on failure. */
  private range(): A.RangeExpr | null {
    this.ws();
    const start = this.pos;
    const left = this.expr();
    if (left && this.lit("..")) {
      const right = this.expr();
      if (right) {
        return { kind: "Range", form: "to", left, right, span: this.span(start, this.pos) };
      }
    }
    this.pos = start;
    const l2 = this.mul();
    if (l2 && this.lit("+")) {
      const right = this.expr();
      if (right) {
        return { kind: "Range", form: "plus", left: l2, right, span: this.span(start, this.pos) };
      }
    }
    this.pos = start;
    return null;
  }

  /** Expr = Shift; left-associative loops mirror Ohm's left recursion. */
  expr(): A.Expr | null {
    return this.binary(0);
  }

  private mul(): A.Expr | null {
    return this.binary(2);
  }

  private binary(level: number): A.Expr | null {
    this.ws();
    const start = this.pos;
    let left = level === 2 ? this.sized() : this.binary(level + 1);
    if (!left) return null;
    const ops = LEVEL_OPS[level];
    for (;;) {
      const save = this.pos;
      this.ws();
      const opStart = this.pos;
      let op: A.BinaryOp | null = null;
      for (const o of ops) {
        if (this.s.startsWith(o, opStart)) {
          op = o;
          break;
        }
      }
      // `..` is not `.`-anything here, but `<<`/`>>` vs `<`: only the listed ops exist.
      if (!op) {
        this.pos = save;
        break;
      }
      this.pos = opStart + op.length;
      const right = level === 2 ? this.sized() : this.binary(level + 1);
      if (!right) {
        this.pos = save;
        break;
      }
      left = {
        kind: "Binary",
        op,
        left,
        right,
        opSpan: this.span(opStart, opStart + op.length),
        span: this.span(start, this.pos),
      };
    }
    return left;
  }

  private sized(): A.Expr | null {
    this.ws();
    const start = this.pos;
    const p = this.primary();
    if (!p) return null;
    const save = this.pos;
    const w = this.peekWord();
    const unit = UNIT_WORDS.has(w) ? w as A.Unit : this.lenient ? this.unitAfter(w) : null;
    if (unit) {
      const ustart = this.pos;
      this.pos += w.length;
      return {
        kind: "Sized",
        expr: p,
        unit,
        unitSpan: this.span(ustart, this.pos),
        span: this.span(start, this.pos),
      };
    }
    this.pos = save;
    return p;
  }

  /** A name where the grammar wants one (`what`: for recovery's messages). */
  protected itemName(_what: string): A.Ident {
    return this.needName();
  }

  /** After a property's name (recovery skips a stray `=` or `:` here). */
  protected afterPropName(): void {}

  /** The unit a word that is not one stands for (none: only recovery reads typos). */
  protected unitAfter(_word: string): A.Unit | null {
    return null;
  }

  private primary(): A.Expr | null {
    this.ws();
    const s = this.s;
    const start = this.pos;
    const c = s.charCodeAt(start);
    if (c === 40) {
      if (++this.depth > MAX_DEPTH) {
        this.tooDeep = start;
        throw GIVE_UP;
      }
      this.pos++;
      const e = this.expr();
      this.depth--;
      if (e && this.lit(")")) return { kind: "Paren", expr: e, span: this.span(start, this.pos) };
      this.pos = start;
      return null;
    }
    if (c === 34) return this.string();
    if (c >= 48 && c <= 57) {
      let e = start + 1;
      while (isIdent(s.charCodeAt(e))) e++;
      this.pos = e;
      const raw = s.slice(start, e);
      return { kind: "Number", raw, value: parseIntLiteral(raw), span: this.span(start, e) };
    }
    const n = this.name(VALUE_KW);
    if (!n) return null;
    return { kind: "Name", name: n.name, span: n.span };
  }
}

const HIDE = new Set(["hide"]);
/** Ohm's `letter` (lower | upper | unicodeLtmo): a Unicode letter. */
const LETTER = /^\p{L}$/u;

/** The kinds of `{ ... }` block, for recovery's messages. */
export type BlockKind = "machine" | "pci_hole" | "body" | "cpuid";

const LEVEL_OPS: A.BinaryOp[][] = [["<<", ">>"], ["+", "-"], ["*", "/"]];
