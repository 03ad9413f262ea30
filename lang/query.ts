/**
 * Queries the editor needs over a parsed/compiled program: the node at an offset, where a
 * name is defined and used, the machines with their devices, and values for hover.
 */
import type * as A from "./ast.ts";
import { children } from "./ast.ts";
import type { Span } from "./diagnostics/types.ts";
import {
  type ConstValue,
  type EvalContext,
  evalExpr,
  evalValue,
  type LetSymbol,
  type Program,
  programContext,
} from "./program.ts";
import { evalRange } from "./check/values.ts";

/** Whether `e` evaluates to a string (a join inside a `+` range, say). */
function isText(e: A.Expr, ctx: EvalContext): boolean {
  const v = evalValue(e, { ...ctx, diagnostics: [] });
  return v !== null && typeof v !== "bigint";
}

/**
 * The chain of nodes under the cursor at `offset`, outermost first (Program ... innermost).
 * Spans count as end-inclusive, so a cursor right after a word (where an editor's cursor
 * sits once the word is typed) still finds it; where two siblings touch, the one that
 * strictly contains the offset (the one starting there) wins.
 */
export function nodePathAt(ast: A.Program, offset: number): A.Node[] {
  const path: A.Node[] = [];
  let node: A.Node | undefined = ast;
  while (node) {
    path.push(node);
    let next: A.Node | undefined;
    for (const c of children(node)) {
      if (c.span.start <= offset && offset <= c.span.end) {
        next = c;
        if (offset < c.span.end) break;
      }
    }
    node = next;
  }
  return path;
}

/** The innermost node containing `offset`. */
export function nodeAt(ast: A.Program, offset: number): A.Node {
  const p = nodePathAt(ast, offset);
  return p[p.length - 1];
}

/**
 * The constant or machine named at `offset` in `file`: a `let` name or a use of it, a
 * machine name or an `extends` base. Returns its definition span and every use.
 */
export function definitionAt(
  program: Program,
  file: string,
  offset: number,
): { kind: "let" | "machine"; name: string; definition: Span; uses: Span[] } | null {
  const sf = program.files.get(file);
  if (!sf) return null;
  const path = nodePathAt(sf.ast, offset);
  const node = path[path.length - 1];
  const parent = path[path.length - 2];
  if (node.kind === "Name" || (node.kind === "Ident" && parent?.kind === "Let")) {
    const sym = program.lets.get(node.name);
    if (sym) return { kind: "let", name: sym.name, definition: sym.span, uses: sym.uses };
  }
  if (node.kind === "Ident" && parent?.kind === "Machine") {
    const m = program.machines.get(node.name);
    if (m) {
      return {
        kind: "machine",
        name: m.name,
        definition: m.span,
        uses: machineUses(program, m.name),
      };
    }
  }
  return null;
}

function machineUses(program: Program, name: string): Span[] {
  const out: Span[] = [];
  for (const m of program.machines.values()) {
    if (m.node.base?.name === name) out.push(m.node.base.span);
  }
  return out;
}

/** Every use of a constant (for rename / find references). */
export function referencesOf(
  program: Program,
  name: string,
): { definition: LetSymbol; uses: Span[] } | null {
  const sym = program.lets.get(name);
  return sym ? { definition: sym, uses: sym.uses } : null;
}

export interface MachineInfo {
  name: string;
  file: string;
  span: Span;
  nameSpan: Span;
  base: string | null;
  devices: { id: string; kind: string; span: Span; nameSpan: Span }[];
  pci: { address: string; kind: string; span: Span; addressSpan: Span }[];
  boot: { protocol: string; path: string; span: Span } | null;
}

/** Machines of one file (or all files) with their devices and PCI functions, for outlines. */
export function machineSymbols(program: Program, file?: string): MachineInfo[] {
  const out: MachineInfo[] = [];
  for (const m of program.machines.values()) {
    if (file !== undefined && m.file !== file) continue;
    const info: MachineInfo = {
      name: m.name,
      file: m.file,
      span: m.node.span,
      nameSpan: m.span,
      base: m.node.base?.name ?? null,
      devices: [],
      pci: [],
      boot: null,
    };
    for (const s of m.node.settings) {
      if (s.kind === "Device") {
        const id = s.name ?? s.deviceKind;
        info.devices.push({
          id: id.name,
          kind: s.deviceKind.name,
          span: s.span,
          nameSpan: id.span,
        });
      } else if (s.kind === "Pci") {
        info.pci.push({
          address: s.address.raw,
          kind: s.deviceKind.name,
          span: s.span,
          addressSpan: s.address.span,
        });
      } else if (s.kind === "Boot") {
        info.boot = { protocol: s.protocol.name, path: s.path.value, span: s.span };
      }
    }
    out.push(info);
  }
  return out;
}

export type EvaluatedValue =
  | { kind: "number"; value: bigint; span: Span }
  | { kind: "string"; value: string; span: Span }
  | { kind: "range"; base: bigint; size: bigint; span: Span };

function constant(v: ConstValue, span: Span): EvaluatedValue {
  return typeof v === "bigint"
    ? { kind: "number", value: v, span }
    : { kind: "string", value: v.text, span };
}

/**
 * The value of the innermost expression or range at `offset` (for hover), evaluated with
 * the program's constants; null when there is none or it has errors.
 */
export function evaluateAt(program: Program, file: string, offset: number): EvaluatedValue | null {
  const sf = program.files.get(file);
  if (!sf) return null;
  const path = nodePathAt(sf.ast, offset);
  for (let i = path.length - 1; i >= 0; i--) {
    const node = path[i];
    const ctx = programContext(program, []);
    if (node.kind === "Ident" && path[i - 1]?.kind === "Let") {
      const sym = program.lets.get(node.name);
      return sym && sym.value !== null ? constant(sym.value, node.span) : null;
    }
    if (node.kind === "Range") {
      const r = evalRange(node, ctx, "range");
      return r && !ctx.diagnostics.length
        ? { kind: "range", base: r.base, size: r.size, span: node.span }
        : null;
    }
    if (
      node.kind === "Number" || node.kind === "Name" || node.kind === "Binary" ||
      node.kind === "Paren" || node.kind === "Sized" || node.kind === "String"
    ) {
      // Prefer the whole expression a number belongs to, up to the setting's value.
      let top = i;
      while (top - 1 >= 0 && ["Binary", "Paren", "Sized"].includes(path[top - 1].kind)) top--;
      const expr = path[top] as A.Expr;
      const v = path[top - 1]?.kind === "Range" && !isText(expr, ctx)
        ? evalExpr(expr, ctx)
        : evalValue(expr, ctx);
      return v !== null && !ctx.diagnostics.length ? constant(v, expr.span) : null;
    }
  }
  return null;
}
