/**
 * The vmdesc grammar and its AST-building semantics, created lazily and exactly once.
 *
 * The grammar comes from a prebuilt recipe (lang/syntax/vmdesc_recipe.ts, generated from
 * vmdesc.ohm) so start-up does not pay for parsing grammar source.
 */
import * as ohm from "ohm-js";
import { RECIPE } from "./vmdesc_recipe.ts";
import type * as A from "../ast.ts";
import type { Span } from "../diagnostics/types.ts";
import { decodeString, parseIntLiteral } from "./literals.ts";

// Kept here too for existing importers; the fast parser takes them from literals.ts so it
// does not load ohm-js.
export { decodeString, parseIntLiteral };

let grammar: ohm.Grammar | undefined;
let semantics: ohm.Semantics | undefined;

export function getGrammar(): ohm.Grammar {
  if (!grammar) {
    // makeRecipe is exported by ohm-js at runtime but not in its type declarations.
    // deno-lint-ignore no-explicit-any
    grammar = (ohm as any).makeRecipe(RECIPE) as ohm.Grammar;
  }
  return grammar;
}

/** Where spans point: set by the parser before each semantics run. */
export const spanContext = { file: "<input>", offset: 0 };

function sp(node: ohm.Node): Span {
  const s = node.source;
  return {
    file: spanContext.file,
    start: s.startIdx + spanContext.offset,
    end: s.endIdx + spanContext.offset,
  };
}

function opt<T>(node: ohm.Node): T | null {
  return node.children.length ? (node.children[0].ast() as T) : null;
}

function list<T>(node: ohm.Node): T[] {
  return node.children.map((c) => c.ast() as T);
}

function ident(node: ohm.Node): A.Ident {
  return { kind: "Ident", name: node.sourceString, span: sp(node) };
}

function binary(op: A.BinaryOp) {
  return function (this: ohm.Node, l: ohm.Node, o: ohm.Node, r: ohm.Node): A.Binary {
    return { kind: "Binary", op, left: l.ast(), right: r.ast(), opSpan: sp(o), span: sp(this) };
  };
}

export function getSemantics(): ohm.Semantics {
  if (semantics) return semantics;
  const g = getGrammar();
  const s = g.createSemantics();
  s.addOperation<unknown>("ast", {
    Program(items) {
      return { kind: "Program", items: list(items), span: sp(this) } satisfies A.Program;
    },
    Item(_lookahead, item) {
      return item.ast();
    },
    Import(_kw, path) {
      return { kind: "Import", path: path.ast(), span: sp(this) } satisfies A.Import;
    },
    Let(_kw, name, _eq, value) {
      return { kind: "Let", name: ident(name), value: value.ast(), span: sp(this) } satisfies A.Let;
    },
    Machine(_kw, name, ext, _o, settings, _c) {
      return {
        kind: "Machine",
        name: ident(name),
        base: opt<A.Ident>(ext),
        settings: list(settings),
        span: sp(this),
      } satisfies A.Machine;
    },
    Extends(_kw, name) {
      return ident(name);
    },
    Setting(_lookahead, setting) {
      return setting.ast();
    },
    PciHole(_kw, range, body) {
      return {
        kind: "PciHole",
        range: range.ast(),
        body: opt<A.HoleItem[]>(body),
        span: sp(this),
      } satisfies A.PciHole;
    },
    HoleBody(_o, items, _c) {
      return list(items);
    },
    Ecam(_kw, base, buses) {
      return {
        kind: "Ecam",
        base: base.ast(),
        buses: opt<A.RangeExpr | A.AutoBuses>(buses),
        span: sp(this),
      } satisfies A.Ecam;
    },
    EcamBuses(_kw, spec) {
      return spec.ast();
    },
    BusSpec_auto(_kw) {
      return { kind: "Auto", span: sp(this) } satisfies A.AutoBuses;
    },
    BusSpec_range(r) {
      return r.ast();
    },
    Device(_kw, kind, name, body) {
      return {
        kind: "Device",
        deviceKind: ident(kind),
        name: opt<A.Ident>(name),
        body: opt<A.BodyItem[]>(body),
        span: sp(this),
      } satisfies A.Device;
    },
    DeviceName(name, _la) {
      return ident(name);
    },
    Pci(_kw, addr, kind, body) {
      return {
        kind: "Pci",
        address: { kind: "PciAddress", raw: addr.sourceString, span: sp(addr) },
        deviceKind: ident(kind),
        body: opt<A.BodyItem[]>(body),
        span: sp(this),
      } satisfies A.Pci;
    },
    Boot(_kw, proto, path, body) {
      return {
        kind: "Boot",
        protocol: ident(proto),
        path: path.ast(),
        body: opt<A.BodyItem[]>(body),
        span: sp(this),
      } satisfies A.Boot;
    },
    Body(_o, items, _c) {
      return list(items);
    },
    Bar(_kw, index, kind, size, pref) {
      return {
        kind: "Bar",
        index: index.ast(),
        barKind: ident(kind),
        size: size.ast(),
        prefetchable: opt<A.Ident>(pref),
        span: sp(this),
      } satisfies A.Bar;
    },
    Prefetchable(kw) {
      return ident(kw);
    },
    Cpuid(_kw, _o, items, _c) {
      return { kind: "Cpuid", items: list(items), span: sp(this) } satisfies A.Cpuid;
    },
    CpuidItem(_kw, features) {
      return {
        kind: "CpuidHide",
        features: features.children.map(ident),
        span: sp(this),
      } satisfies A.CpuidHide;
    },
    Prop(name, value) {
      return {
        kind: "Prop",
        name: ident(name),
        value: value.ast(),
        span: sp(this),
      } satisfies A.Prop;
    },
    Value_bool(b) {
      return { kind: "Bool", value: b.sourceString === "true", span: sp(this) } satisfies A.BoolLit;
    },
    Value_range(r) {
      return r.ast();
    },
    Value_expr(e) {
      return e.ast();
    },
    Range_to(l, _op, r) {
      return {
        kind: "Range",
        form: "to",
        left: l.ast(),
        right: r.ast(),
        span: sp(this),
      } satisfies A.RangeExpr;
    },
    Range_plus(l, _op, r) {
      return {
        kind: "Range",
        form: "plus",
        left: l.ast(),
        right: r.ast(),
        span: sp(this),
      } satisfies A.RangeExpr;
    },
    Shift_shl: binary("<<"),
    Shift_shr: binary(">>"),
    Add_add: binary("+"),
    Add_sub: binary("-"),
    Mul_mul: binary("*"),
    Mul_div: binary("/"),
    Sized_unit(e, u) {
      return {
        kind: "Sized",
        expr: e.ast(),
        unit: u.sourceString as A.Unit,
        unitSpan: sp(u),
        span: sp(this),
      } satisfies A.Sized;
    },
    Primary_name(n) {
      return n.ast();
    },
    Primary_paren(_o, e, _c) {
      return { kind: "Paren", expr: e.ast(), span: sp(this) } satisfies A.Paren;
    },
    number(_d, _rest) {
      const raw = this.sourceString;
      return {
        kind: "Number",
        raw,
        value: parseIntLiteral(raw),
        span: sp(this),
      } satisfies A.NumberLit;
    },
    name(_start, _rest) {
      return { kind: "Name", name: this.sourceString, span: sp(this) } satisfies A.NameRef;
    },
    string(_o, _chars, _c) {
      const raw = this.sourceString;
      return {
        kind: "String",
        value: decodeString(raw),
        raw,
        span: sp(this),
      } satisfies A.StringLit;
    },
    _iter(...children) {
      return children.map((c) => c.ast());
    },
    _terminal() {
      return this.sourceString;
    },
  });
  semantics = s;
  return s;
}
