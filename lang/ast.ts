/**
 * The vmdesc syntax tree. Every node carries `kind` and the `span` of source it came from
 * (file + UTF-16 offsets), so diagnostics, hover and formatting can point back at text.
 *
 * The tree is close to the text on purpose: the formatter prints it back, and the
 * checker (not the grammar) interprets generic `name value` properties.
 */
import type { Span } from "./diagnostics/types.ts";
import type { UNITS } from "./syntax/keywords.ts";

export type { Span };

export interface NodeBase {
  span: Span;
}

/** A name as written (let names, machine names, property names, device kinds...). */
export interface Ident extends NodeBase {
  kind: "Ident";
  name: string;
}

export interface StringLit extends NodeBase {
  kind: "String";
  /** Decoded value (escapes `\"`, `\\`, `\n`, `\t` applied). */
  value: string;
  /** Text as written, quotes included. */
  raw: string;
}

export interface BoolLit extends NodeBase {
  kind: "Bool";
  value: boolean;
}

// ── expressions ────────────────────────────────────────────────────────

export interface NumberLit extends NodeBase {
  kind: "Number";
  /** As written: `0xE000_0000`, `128`, `0b1010` (the formatter prints this back). */
  raw: string;
  /** Parsed value, or null when the literal is invalid (E0002 reported by the checker). */
  value: bigint | null;
}

export interface NameRef extends NodeBase {
  kind: "Name";
  name: string;
}

export type BinaryOp = "+" | "-" | "*" | "/" | "<<" | ">>";

export interface Binary extends NodeBase {
  kind: "Binary";
  op: BinaryOp;
  left: Expr;
  right: Expr;
  /** Span of the operator token. */
  opSpan: Span;
}

export interface Paren extends NodeBase {
  kind: "Paren";
  expr: Expr;
}

/** A size unit: the grammar's `unit` rule. */
export type Unit = (typeof UNITS)[number];

export interface Sized extends NodeBase {
  kind: "Sized";
  expr: Expr;
  unit: Unit;
  unitSpan: Span;
}

/** An expression: numbers and their arithmetic, strings (joined with `+`), constants. */
export type Expr = NumberLit | StringLit | NameRef | Binary | Paren | Sized;

/** `a .. b` (end exclusive) or `a + size`. */
export interface RangeExpr extends NodeBase {
  kind: "Range";
  form: "to" | "plus";
  left: Expr;
  right: Expr;
}

export type Value = BoolLit | RangeExpr | Expr;

// ── settings ───────────────────────────────────────────────────────────

/** A generic `name value` setting (machine level, hole, device, pci and boot bodies). */
export interface Prop extends NodeBase {
  kind: "Prop";
  name: Ident;
  value: Value;
}

export interface Ecam extends NodeBase {
  kind: "Ecam";
  base: Expr;
  /** `buses a..b`, `buses auto`, or null when omitted (0..255). */
  buses: RangeExpr | AutoBuses | null;
}

export interface AutoBuses extends NodeBase {
  kind: "Auto";
}

export type HoleItem = Ecam | Prop;

export interface PciHole extends NodeBase {
  kind: "PciHole";
  range: RangeExpr;
  /** null when written without braces. */
  body: HoleItem[] | null;
}

export interface Bar extends NodeBase {
  kind: "Bar";
  index: Expr;
  barKind: Ident;
  size: Expr;
  prefetchable: Ident | null;
}

export type BodyItem = Bar | Prop;

export interface Device extends NodeBase {
  kind: "Device";
  deviceKind: Ident;
  /** Explicit name; defaults to the kind. */
  name: Ident | null;
  body: BodyItem[] | null;
}

export interface PciAddress extends NodeBase {
  kind: "PciAddress";
  raw: string;
}

export interface Pci extends NodeBase {
  kind: "Pci";
  address: PciAddress;
  deviceKind: Ident;
  body: BodyItem[] | null;
}

export interface Boot extends NodeBase {
  kind: "Boot";
  protocol: Ident;
  path: StringLit;
  body: BodyItem[] | null;
}

export interface CpuidHide extends NodeBase {
  kind: "CpuidHide";
  features: Ident[];
}

export interface Cpuid extends NodeBase {
  kind: "Cpuid";
  items: CpuidHide[];
}

export type Setting = PciHole | Device | Pci | Boot | Cpuid | Prop;

// ── top level ──────────────────────────────────────────────────────────

export interface Import extends NodeBase {
  kind: "Import";
  path: StringLit;
}

export interface Let extends NodeBase {
  kind: "Let";
  name: Ident;
  /**
   * null for a `let` whose value did not parse (error recovery keeps the name, so uses of
   * it are not reported again as undefined).
   */
  value: Expr | null;
}

export interface Machine extends NodeBase {
  kind: "Machine";
  name: Ident;
  base: Ident | null;
  settings: Setting[];
  /**
   * Set when the machine had a syntax error and error recovery read it as the user most
   * likely meant (a unit typo read as the unit, an unclosed `{` closed where its block
   * ends, broken settings skipped): checked, so one typo does not hide the other errors,
   * but never lowered to a Plan.
   */
  recovered?: boolean;
  /**
   * Text recovery skipped in this machine (broken settings). A check that something is
   * missing (a `boot` line, a serial device, a required property) stays quiet about a
   * part that may have been lost there.
   */
  lost?: Span[];
}

export type Item = Import | Let | Machine;

export interface Program extends NodeBase {
  kind: "Program";
  items: Item[];
}

export type Node =
  | Program
  | Item
  | Setting
  | HoleItem
  | BodyItem
  | CpuidHide
  | Value
  | Ident
  | PciAddress
  | AutoBuses;

/** The child nodes of `node`, in source order (for walks and node-at-offset). */
export function children(node: Node): Node[] {
  switch (node.kind) {
    case "Program":
      return node.items;
    case "Import":
      return [node.path];
    case "Let":
      return node.value ? [node.name, node.value] : [node.name];
    case "Machine":
      return node.base ? [node.name, node.base, ...node.settings] : [node.name, ...node.settings];
    case "PciHole":
      return [node.range, ...(node.body ?? [])];
    case "Ecam":
      return node.buses ? [node.base, node.buses] : [node.base];
    case "Device":
      return [node.deviceKind, ...(node.name ? [node.name] : []), ...(node.body ?? [])];
    case "Pci":
      return [node.address, node.deviceKind, ...(node.body ?? [])];
    case "Boot":
      return [node.protocol, node.path, ...(node.body ?? [])];
    case "Bar":
      return [
        node.index,
        node.barKind,
        node.size,
        ...(node.prefetchable ? [node.prefetchable] : []),
      ];
    case "Cpuid":
      return node.items;
    case "CpuidHide":
      return node.features;
    case "Prop":
      return [node.name, node.value];
    case "Range":
      return [node.left, node.right];
    case "Binary":
      return [node.left, node.right];
    case "Paren":
      return [node.expr];
    case "Sized":
      return [node.expr];
    default:
      return [];
  }
}
