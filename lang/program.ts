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
  /** Value, or null when its expression has an error. */
  value: bigint | null;
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

export interface EvalContext {
  /** Value of a constant, or undefined when `name` is not visible here. */
  lookup(name: string): bigint | null | undefined;
  /** Every visible name, for "did you mean". */
  names(): Iterable<string>;
  /** Extra hint for an undefined name (e.g. "defined later"). */
  undefinedHint?(name: string): string | null;
  diagnostics: Diags;
}

function fits(v: bigint): boolean {
  return v >= 0n && v < U64_LIMIT;
}

/** Evaluates an expression with unsigned 64-bit semantics; errors go to ctx.diagnostics. */
export function evalExpr(e: A.Expr, ctx: EvalContext): bigint | null {
  switch (e.kind) {
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
        const s = suggest(e.name, ctx.names());
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
      return evalExpr(e.expr, ctx);
    case "Sized": {
      const v = evalExpr(e.expr, ctx);
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
      const l = evalExpr(e.left, ctx);
      const r = evalExpr(e.right, ctx);
      if (l === null || r === null) return null;
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
  const um = /^[0-9]+(kb|mb|gb|tb|k|m|g|t|kib|mib|gib|tib)$/i.exec(e.raw);
  let hint =
    "numbers are decimal (123), hex (0x7B), binary (0b1111011) or octal (0o173), with `_` only between digits";
  if (um) {
    hint = "units are binary and case-sensitive: B, KiB, MiB, GiB, TiB, written after a space";
  }
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
    diagnostics.push(...parsed.diagnostics);
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
      undefinedHint: (n) => {
        const later = allLetNames.get(n);
        if (later && !defined.has(n)) {
          return `\`${n}\` is defined later; a constant can only use constants defined before it`;
        }
        return null;
      },
      diagnostics,
    };
    const value = evalExpr(item.value, ctx);
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
