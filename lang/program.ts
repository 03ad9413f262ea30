/**
 * Loading a program: the main file, its imports (through the LangHost), the `let`
 * constants (evaluated once, in order, 64-bit), and the table of machines.
 *
 * Name rules: one namespace for the whole program (the main file and everything it
 * imports, transitively). A constant may only use constants defined before it: those of
 * imported files (imports are loaded first) and earlier ones in the same file. Machines
 * may use every constant.
 */
import type * as A from "./ast.ts";
import { children } from "./ast.ts";
import type { Diagnostic, Span } from "./diagnostics/types.ts";
import { type Diags, error } from "./diagnostics/make.ts";
import { parse, type ParseResult } from "./parse_lean.ts";
import { suggest } from "./suggest.ts";
import { unitFor } from "./syntax/literals.ts";

export interface LangHost {
  /** File contents, or undefined when missing or unreadable. */
  readFile(path: string): string | undefined;
  fileExists(path: string): boolean;
  /** Join `relPath` relative to the directory of `fromFile`. */
  resolve(fromFile: string, relPath: string): string;
}

export interface SourceFile {
  path: string;
  text: string;
  ast: A.Program;
}

export interface LetSymbol {
  name: string;
  file: string;
  node: A.Let;
  /** Span of the name in the `let`. */
  span: Span;
  /** Value (a number or a string), or null when its expression has an error. */
  value: ConstValue | null;
  /** Spans of every use (name references anywhere in the program). */
  uses: Span[];
}

export interface MachineSymbol {
  name: string;
  file: string;
  node: A.Machine;
  span: Span;
}

export interface Program {
  /** The main file's path as given to compile(). */
  main: string;
  /** Every loaded file by path (main first, then imports in load order). */
  files: Map<string, SourceFile>;
  lets: Map<string, LetSymbol>;
  machines: Map<string, MachineSymbol>;
}

export const U64_LIMIT = 1n << 64n;

const UNIT_SHIFT: Record<A.Unit, bigint> = { B: 0n, KiB: 10n, MiB: 20n, GiB: 30n, TiB: 40n };

/** Formats a number the way the language writes addresses: 0xE000_0000. */
export function hex(v: bigint | number): string {
  const s = BigInt(v).toString(16).toUpperCase();
  const groups: string[] = [];
  for (let i = s.length; i > 0; i -= 4) groups.unshift(s.slice(Math.max(0, i - 4), i));
  return "0x" + groups.join("_");
}

/** Human size: 128 MiB, 4 KiB, 1.5 GiB, 37 B. */
export function humanSize(v: bigint | number): string {
  const n = BigInt(v);
  const units: [A.Unit, bigint][] = [["TiB", 40n], ["GiB", 30n], ["MiB", 20n], ["KiB", 10n]];
  for (const [u, sh] of units) {
    if (n >= 1n << sh && n % (1n << sh) === 0n) return `${n >> sh} ${u}`;
  }
  for (const [u, sh] of units) {
    if (n >= 1n << sh) return `${(Number(n) / Number(1n << sh)).toFixed(2)} ${u}`;
  }
  return `${n} B`;
}

/**
 * A string value: its text, and the file whose literal wrote it (the first literal of a
 * join), so a relative path keeps the directory of the file that wrote it.
 */
export interface Text {
  text: string;
  origin: string;
}

/** What a constant or an expression evaluates to: an unsigned 64-bit number or a string. */
export type ConstValue = bigint | Text;

export interface EvalContext {
  /**
   * Value of a constant, undefined when `name` is not visible here, null when its
   * definition has an error (already reported: uses stay quiet).
   */
  lookup(name: string): ConstValue | null | undefined;
  /** Every visible name, for "did you mean". */
  names(): Iterable<string>;
  /** Comparisons "did you mean" may still spend in this program (see nameSuggestion). */
  suggestions?: { left: number };
  /** Extra hint for an undefined name (e.g. "defined later"). */
  undefinedHint?(name: string): string | null;
  diagnostics: Diags;
}

function fits(v: bigint): boolean {
  return v >= 0n && v < U64_LIMIT;
}

/** "a string", "the number constant `x`", ... for type mismatch messages. */
function describe(e: A.Expr, v: ConstValue): string {
  const what = typeof v === "bigint" ? "number" : "string";
  if (e.kind === "Name") return `the ${what} constant \`${e.name}\``;
  return `a ${what}`;
}

/**
 * Evaluates an expression where a number is expected, with unsigned 64-bit semantics;
 * errors go to ctx.diagnostics (E0005 for a string, `what` naming the place).
 */
export function evalExpr(e: A.Expr, ctx: EvalContext, what = "this value"): bigint | null {
  const v = evalValue(e, ctx);
  if (v === null || typeof v === "bigint") return v;
  ctx.diagnostics.push(
    error(
      "E0005",
      `${what} must be a number, found ${describe(e, v)}`,
      e.span,
      "write a number, e.g. 0x3f8, 4 or 128 MiB",
    ),
  );
  return null;
}

/**
 * Evaluates an expression where a string is expected (strings and string constants,
 * joined with `+`); E0005 for a number.
 */
export function evalText(e: A.Expr, ctx: EvalContext, what = "this value"): Text | null {
  const v = evalValue(e, ctx);
  if (v === null || typeof v !== "bigint") return v;
  ctx.diagnostics.push(
    error(
      "E0005",
      `${what} must be a string in double quotes, found ${describe(e, v)}`,
      e.span,
      e.kind === "Name"
        ? `\`${e.name}\` names a number; put the text in double quotes or name a string constant`
        : "put the text in double quotes",
    ),
  );
  return null;
}

/**
 * Evaluates an expression to a number or a string. Numbers have unsigned 64-bit
 * semantics; `+` joins two strings; every other mix is E0005. Errors go to
 * ctx.diagnostics; null means an error was reported (or a constant it uses has one).
 */
export function evalValue(e: A.Expr, ctx: EvalContext): ConstValue | null {
  switch (e.kind) {
    case "String":
      return { text: e.value, origin: e.span.file };
    case "Number": {
      if (e.value === null) {
        ctx.diagnostics.push(invalidLiteral(e));
        return null;
      }
      if (!fits(e.value)) {
        ctx.diagnostics.push(
          error(
            "E0003",
            `the literal \`${e.raw}\` does not fit in 64 bits`,
            e.span,
            "the largest value is 0xFFFF_FFFF_FFFF_FFFF",
          ),
        );
        return null;
      }
      return e.value;
    }
    case "Name": {
      const v = ctx.lookup(e.name);
      if (v === undefined) {
        const s = nameSuggestion(e.name, ctx.names(), ctx.suggestions);
        const extra = ctx.undefinedHint?.(e.name) ?? null;
        ctx.diagnostics.push(
          error(
            "E0101",
            `cannot find the name \`${e.name}\``,
            e.span,
            extra ?? (s ? `did you mean \`${s}\`?` : "define it with `let " + e.name + " = ...`"),
            [],
            s && !extra
              ? [{ title: `change to \`${s}\``, span: e.span, replacement: s }]
              : undefined,
          ),
        );
        return null;
      }
      return v;
    }
    case "Paren":
      return evalValue(e.expr, ctx);
    case "Sized": {
      const v = evalExpr(e.expr, ctx, `\`${e.unit}\` applies to a number: the value before it`);
      if (v === null) return null;
      const r = v << UNIT_SHIFT[e.unit];
      if (!fits(r)) {
        ctx.diagnostics.push(
          error(
            "E0003",
            `${v} ${e.unit} does not fit in 64 bits`,
            e.span,
            "values are unsigned 64-bit integers: at most 16 EiB - 1",
          ),
        );
        return null;
      }
      return r;
    }
    case "Binary": {
      const lv = evalValue(e.left, ctx);
      const rv = evalValue(e.right, ctx);
      if (lv === null || rv === null) return null;
      if (typeof lv !== "bigint" || typeof rv !== "bigint") {
        if (e.op === "+" && typeof lv !== "bigint" && typeof rv !== "bigint") {
          return { text: lv.text + rv.text, origin: lv.origin };
        }
        ctx.diagnostics.push(mixedTypes(e, lv, rv));
        return null;
      }
      const l = lv;
      const r = rv;
      let v: bigint;
      switch (e.op) {
        case "+":
          v = l + r;
          break;
        case "-":
          v = l - r;
          if (v < 0n) {
            ctx.diagnostics.push(
              error(
                "E0003",
                `${hex(l)} - ${hex(r)} is negative`,
                e.span,
                "values are unsigned 64-bit integers; swap the operands?",
              ),
            );
            return null;
          }
          break;
        case "*":
          v = l * r;
          break;
        case "/":
          if (r === 0n) {
            ctx.diagnostics.push(
              error("E0004", "division by zero", e.right.span, "the divisor evaluates to 0"),
            );
            return null;
          }
          v = l / r;
          break;
        case "<<":
          v = r >= 64n ? (l === 0n ? 0n : U64_LIMIT) : l << r;
          break;
        case ">>":
          v = r >= 64n ? 0n : l >> r;
          break;
      }
      if (!fits(v)) {
        ctx.diagnostics.push(
          error(
            "E0003",
            `\`${e.op}\` overflows 64 bits`,
            e.span,
            `the operands are ${hex(l)} and ${hex(r)}`,
          ),
        );
        return null;
      }
      return v;
    }
  }
}

/** E0005 for an operator between a string and something it does not apply to. */
function mixedTypes(e: A.Binary, l: ConstValue, r: ConstValue): Diagnostic {
  const mixed = (typeof l === "bigint") !== (typeof r === "bigint");
  return error(
    "E0005",
    e.op === "+" && mixed
      ? `\`+\` joins two strings or adds two numbers, not ${describe(e.left, l)} and ${
        describe(e.right, r)
      }`
      : `\`${e.op}\` applies to numbers, not ${
        typeof l === "bigint" ? describe(e.right, r) : describe(e.left, l)
      }`,
    e.opSpan,
    e.op === "+" && mixed
      ? "numbers are not turned into text: write the number inside the string"
      : "strings only join with `+`",
  );
}

/**
 * Names "did you mean" may compare an unknown name with, in one program. Each unknown name
 * is compared with every visible one; a file with thousands of unknown names among
 * thousands of constants would make that quadratic, and no one reads the suggestions of
 * the thousandth: past the budget they are left out.
 */
const SUGGESTION_BUDGET = 20_000;

const budgets = new WeakMap<Program, { left: number }>();

/** The "did you mean" budget of a program (shared by every check of one compile). */
export function suggestionBudget(program: Program): { left: number } {
  let b = budgets.get(program);
  if (!b) budgets.set(program, b = { left: SUGGESTION_BUDGET });
  return b;
}

/** suggest() within a budget of comparisons (none left: no suggestion). */
export function nameSuggestion(
  name: string,
  names: Iterable<string>,
  budget?: { left: number },
): string | null {
  if (budget && budget.left <= 0) return null;
  const all = [...names];
  if (budget) budget.left -= all.length;
  return suggest(name, all);
}

function invalidLiteral(e: A.NumberLit): Diagnostic {
  const m = /^([0-9][0-9_]*|0x[0-9a-fA-F_]+)(B|KiB|MiB|GiB|TiB)$/.exec(e.raw);
  if (m) {
    const fixed = `${m[1]} ${m[2]}`;
    return error(
      "E0002",
      `invalid number \`${e.raw}\``,
      e.span,
      `put a space between the number and its unit: \`${fixed}\``,
      [],
      [{ title: `write \`${fixed}\``, span: e.span, replacement: fixed }],
    );
  }
  // `256MB`: a number glued to a word that looks like a unit.
  const um = /^([0-9][0-9_]*)([A-Za-z]+)$/.exec(e.raw);
  const unit = um ? unitFor(um[2]) : null;
  if (um && unit) {
    const fixed = `${um[1]} ${unit}`;
    return error(
      "E0002",
      `invalid number \`${e.raw}\``,
      e.span,
      `did you mean \`${fixed}\`? Units are binary and case-sensitive (B, KiB, MiB, GiB, TiB), written after a space`,
      [],
      [{ title: `write \`${fixed}\``, span: e.span, replacement: fixed }],
    );
  }
  const hint =
    "numbers are decimal (123), hex (0x7B), binary (0b1111011) or octal (0o173), with `_` only between digits";
  return error("E0002", `invalid number \`${e.raw}\``, e.span, hint);
}

/** Loads the main file and its imports, and evaluates every constant. */
export function loadProgram(
  text: string,
  file: string,
  host: LangHost,
  diagnostics: Diags,
  /** The main file already parsed (an editor's IncrementalParser); parsed here otherwise. */
  mainParsed?: ParseResult,
): Program {
  const program: Program = { main: file, files: new Map(), lets: new Map(), machines: new Map() };
  const suggestions = suggestionBudget(program);
  const defined = new Set<string>(); // constants visible so far (in definition order)
  const allLetNames = new Map<string, LetSymbol>(); // for "defined later" hints
  const loading: string[] = []; // import stack (canonical paths), for cycle detection
  const loaded = new Set<string>(); // canonical paths of every loaded file
  // The main file keeps the name it was given (spans, messages); for cycle detection and
  // "already loaded" it is compared in the host's normal form (`./a.vmdesc` = `a.vmdesc`).
  const canon = (p: string) =>
    p.startsWith("<") ? p : host.resolve(p, p.slice(p.lastIndexOf("/") + 1));

  const visit = (path: string, src: string) => {
    const parsed = mainParsed && path === file && src === text ? mainParsed : parse(src, path);
    for (const d of parsed.diagnostics) diagnostics.push(d); // (no spread: may be huge)
    const sf: SourceFile = { path, text: src, ast: parsed.ast };
    program.files.set(path, sf);
    loading.push(canon(path));
    loaded.add(canon(path));
    for (const item of parsed.ast.items) {
      if (item.kind !== "Import") continue;
      const target = host.resolve(path, item.path.value);
      const cycleAt = loading.indexOf(canon(target));
      if (cycleAt >= 0) {
        const chain = [...loading.slice(cycleAt), target].join(" → ");
        diagnostics.push(
          error(
            "E0103",
            `import cycle: ${chain}`,
            item.path.span,
            "remove one of these imports; shared definitions can move to a third file",
          ),
        );
        continue;
      }
      if (loaded.has(canon(target))) continue; // already loaded through another path
      const imported = host.readFile(target);
      if (imported === undefined) {
        diagnostics.push(
          error(
            "E0104",
            `cannot read the imported file \`${item.path.value}\` (looked for ${target})`,
            item.path.span,
            "paths are relative to the importing file",
          ),
        );
        continue;
      }
      visit(target, imported);
    }
    loading.pop();
    // Pre-register names so "defined later" can be explained.
    for (const item of parsed.ast.items) {
      if (item.kind === "Let" && !allLetNames.has(item.name.name)) {
        allLetNames.set(item.name.name, mkLet(item, path));
      }
    }
    for (const item of parsed.ast.items) {
      if (item.kind === "Let") defineLet(item, path);
      else if (item.kind === "Machine") defineMachine(item, path);
    }
  };

  const mkLet = (item: A.Let, path: string): LetSymbol => ({
    name: item.name.name,
    file: path,
    node: item,
    span: item.name.span,
    value: null,
    uses: [],
  });

  const defineLet = (item: A.Let, path: string) => {
    const name = item.name.name;
    const prev = program.lets.get(name);
    const ctx: EvalContext = {
      lookup: (n) => (defined.has(n) ? program.lets.get(n)!.value : undefined),
      names: () => defined,
      suggestions,
      undefinedHint: (n) => {
        const later = allLetNames.get(n);
        if (later && !defined.has(n)) {
          return `\`${n}\` is defined later; a constant can only use constants defined before it`;
        }
        return null;
      },
      diagnostics,
    };
    // A `let` whose value did not parse is known, with no value: uses stay quiet.
    const value = item.value ? evalValue(item.value, ctx) : null;
    if (prev) {
      diagnostics.push(definedTwice("constant", name, item.name.span, prev.span));
      return;
    }
    const sym = mkLet(item, path);
    sym.value = value;
    program.lets.set(name, sym);
    defined.add(name);
  };

  const defineMachine = (item: A.Machine, path: string) => {
    const name = item.name.name;
    const prev = program.machines.get(name);
    if (prev) {
      diagnostics.push(definedTwice("machine", name, item.name.span, prev.span));
      return;
    }
    program.machines.set(name, { name, file: path, node: item, span: item.name.span });
  };

  visit(file, text);
  collectUses(program);
  return program;
}

/** Records every reference to a constant (walks all files' expressions). */
function collectUses(program: Program) {
  const walk = (n: A.Node) => {
    if (n.kind === "Name") {
      const sym = program.lets.get(n.name);
      if (sym && !(sym.span.file === n.span.file && sym.span.start === n.span.start)) {
        sym.uses.push(n.span);
      }
      return;
    }
    for (const c of children(n)) walk(c);
  };
  for (const f of program.files.values()) walk(f.ast);
}

/** An EvalContext over all constants of a loaded program (for machines and hover). */
export function programContext(program: Program, diagnostics: Diags): EvalContext {
  return {
    lookup: (n) => (program.lets.has(n) ? program.lets.get(n)!.value : undefined),
    names: () => program.lets.keys(),
    suggestions: suggestionBudget(program),
    diagnostics,
  };
}

/** E0102 for a second definition of a constant or machine, pointing back at the first. */
function definedTwice(
  what: "constant" | "machine",
  name: string,
  span: Span,
  first: Span,
): Diagnostic {
  return error("E0102", `the ${what} \`${name}\` is defined twice`, span, "rename one of them", [
    { span: first, message: "first defined here" },
  ]);
}
