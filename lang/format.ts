/**
 * The canonical layout of a .vmdesc file.
 *
 * Rules: 2-space indentation; one top-level item and one machine setting per line; single
 * spaces between tokens (`a .. b` for address ranges, `0..255` for bus ranges); numbers
 * exactly as written; at most one blank line kept between items, none after `{` or
 * before `}`. Device, PCI, boot, pci_hole and cpuid bodies stay on one line
 * (`{ port 0x3f8 irq 4 }`) when they were written on one line without comments, and get
 * one property per line otherwise. Machines always get one setting per line.
 *
 * Comments are kept: a comment on its own line stays on its own line before the item
 * that follows it; a comment after an item on the same line stays there. A comment inside
 * an expression or a one-line body moves to its own line before the next item.
 *
 * The formatter prints the syntax tree, so it refuses (returns the text unchanged and the
 * syntax diagnostics) when the file does not parse.
 */
import type * as A from "./ast.ts";
import type { Diagnostic } from "./diagnostics/types.ts";
import { BOM, parse, withoutBom } from "./parse_lean.ts";

export interface FormatResult {
  text: string;
  diagnostics: Diagnostic[];
}

export function format(text: string, file = "<input>"): FormatResult {
  const p = parse(text, file);
  if (p.diagnostics.some((d) => d.severity === "error")) {
    return { text, diagnostics: p.diagnostics };
  }
  // A byte order mark the file starts with stays where it is (parse reads it as a space).
  const bom = text.startsWith(BOM) ? BOM : "";
  return { text: bom + new Printer(withoutBom(text), p.ast).print(), diagnostics: [] };
}

interface Comment {
  start: number;
  end: number;
  text: string;
}

/** Comments of a file that parsed, in order (strings are skipped). */
export function scanComments(text: string): Comment[] {
  const out: Comment[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 47 && text.charCodeAt(i + 1) === 47) {
      let e = text.indexOf("\n", i);
      if (e < 0) e = n;
      out.push({ start: i, end: e, text: text.slice(i, e).trimEnd() });
      i = e;
    } else if (c === 47 && text.charCodeAt(i + 1) === 42) {
      let e = text.indexOf("*/", i + 2);
      e = e < 0 ? n : e + 2;
      out.push({ start: i, end: e, text: text.slice(i, e) });
      i = e;
    } else if (c === 34) {
      let j = i + 1;
      while (j < n && text[j] !== '"' && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      i = j + 1;
    } else {
      i++;
    }
  }
  return out;
}

export function printExpr(e: A.Value): string {
  switch (e.kind) {
    case "Number":
      return e.raw;
    case "Name":
      return e.name;
    case "String":
      return e.raw;
    case "Bool":
      return String(e.value);
    case "Paren":
      return `(${printExpr(e.expr)})`;
    case "Sized":
      return `${printExpr(e.expr)} ${e.unit}`;
    case "Binary":
      return `${printExpr(e.left)} ${e.op} ${printExpr(e.right)}`;
    case "Range":
      return `${printExpr(e.left)} ${e.form === "to" ? ".." : "+"} ${printExpr(e.right)}`;
  }
}

function printBuses(b: A.RangeExpr | A.AutoBuses): string {
  if (b.kind === "Auto") return "auto";
  return b.form === "to" ? `${printExpr(b.left)}..${printExpr(b.right)}` : printExpr(b);
}

type Stmt = A.Item | A.Setting | A.HoleItem | A.BodyItem | A.CpuidHide;

class Printer {
  private lines: string[] = [];
  private comments: Comment[];
  private ci = 0;
  /** End offset of the last source element printed (for blank-line detection). */
  private lastEnd = 0;
  private blockStart = true;

  constructor(private text: string, private ast: A.Program) {
    this.comments = scanComments(text);
  }

  print(): string {
    this.block(this.ast.items, 0, this.text.length);
    while (this.lines.length && this.lines[this.lines.length - 1] === "") this.lines.pop();
    return this.lines.length ? this.lines.join("\n") + "\n" : "";
  }

  private newlinesBetween(a: number, b: number): number {
    let k = 0;
    for (let i = a; i < b; i++) if (this.text.charCodeAt(i) === 10) k++;
    return k;
  }

  private push(indent: number, s: string) {
    this.lines.push("  ".repeat(indent) + s);
    this.blockStart = false;
  }

  private maybeBlank(pos: number) {
    if (!this.blockStart && this.newlinesBetween(this.lastEnd, pos) >= 2) this.lines.push("");
  }

  /** Comments before `pos`, each on its own line. */
  private leading(pos: number, indent: number) {
    while (this.ci < this.comments.length && this.comments[this.ci].start < pos) {
      const c = this.comments[this.ci++];
      this.maybeBlank(c.start);
      this.push(indent, c.text);
      this.lastEnd = c.end;
    }
    this.maybeBlank(pos);
  }

  /** Comments right after `end` on the same line (and before `limit`) join that line. */
  private trailing(end: number, limit: number) {
    while (this.ci < this.comments.length) {
      const c = this.comments[this.ci];
      if (c.start < end || c.start >= limit || this.newlinesBetween(end, c.start) > 0) break;
      this.lines[this.lines.length - 1] += " " + c.text;
      this.lastEnd = c.end;
      end = c.end;
      this.ci++;
    }
  }

  private hasCommentIn(start: number, end: number): boolean {
    for (let k = this.ci; k < this.comments.length; k++) {
      const c = this.comments[k];
      if (c.start >= end) return false;
      if (c.start >= start) return true;
    }
    return false;
  }

  /** Items of a block at `indent`; `close` is the offset of the block's `}` (or EOF). */
  private block(items: Stmt[], indent: number, close: number) {
    this.blockStart = true;
    for (let k = 0; k < items.length; k++) {
      const it = items[k];
      this.leading(it.span.start, indent);
      this.stmt(it, indent);
      this.lastEnd = it.span.end;
      this.trailing(it.span.end, k + 1 < items.length ? items[k + 1].span.start : close);
    }
    this.leading(close, indent);
    this.blockStart = false;
  }

  /** Opens `head {`, prints the items, closes with `}`. */
  private braced(head: string, items: Stmt[], indent: number, node: A.NodeBase) {
    const close = node.span.end - 1;
    if (items.length === 0 && !this.hasCommentIn(node.span.start, close)) {
      this.push(indent, `${head} {}`);
      return;
    }
    this.push(indent, `${head} {`);
    this.block(items, indent + 1, close);
    this.push(indent, "}");
  }

  /** A body that may stay on one line if it was written on one line without comments. */
  private body(head: string, items: Stmt[], indent: number, node: A.NodeBase, keepEmpty: boolean) {
    const close = node.span.end - 1;
    const open = this.text.lastIndexOf("{", items.length ? items[0].span.start : close);
    const oneLine = this.newlinesBetween(open, close) === 0 && !this.hasCommentIn(open, close);
    if (items.length === 0 && !this.hasCommentIn(open, close)) {
      this.push(indent, keepEmpty ? `${head} {}` : head);
      return;
    }
    if (oneLine) {
      this.push(indent, `${head} { ${items.map((i) => this.inline(i)).join(" ")} }`);
      return;
    }
    this.braced(head, items, indent, node);
  }

  private inline(s: Stmt): string {
    switch (s.kind) {
      case "Prop":
        return `${s.name.name} ${printExpr(s.value)}`;
      case "Bar":
        return `bar ${printExpr(s.index)} ${s.barKind.name} ${printExpr(s.size)}${
          s.prefetchable ? " prefetchable" : ""
        }`;
      case "Ecam":
        return `ecam ${printExpr(s.base)}${s.buses ? ` buses ${printBuses(s.buses)}` : ""}`;
      case "CpuidHide":
        return `hide ${s.features.map((f) => f.name).join(" ")}`;
      default:
        throw new Error(`not an inline item: ${s.kind}`);
    }
  }

  private stmt(s: Stmt, indent: number) {
    switch (s.kind) {
      case "Import":
        this.push(indent, `import ${s.path.raw}`);
        return;
      case "Let":
        // A file with a syntax error is never printed, so a let always has its value here.
        this.push(indent, `let ${s.name.name} = ${s.value ? printExpr(s.value) : ""}`);
        return;
      case "Machine":
        this.braced(
          `machine ${s.name.name}${s.base ? ` extends ${s.base.name}` : ""}`,
          s.settings,
          indent,
          s,
        );
        return;
      case "PciHole": {
        const head = `pci_hole ${printExpr(s.range)}`;
        if (s.body === null) this.push(indent, head);
        else this.body(head, s.body, indent, s, false);
        return;
      }
      case "Device": {
        const head = `device ${s.deviceKind.name}${s.name ? ` ${s.name.name}` : ""}`;
        // A named device keeps its braces: `device serial com1 {}` (the name needs them).
        if (s.body === null) this.push(indent, head);
        else this.body(head, s.body, indent, s, s.name !== null);
        return;
      }
      case "Pci": {
        const head = `pci ${s.address.raw} ${s.deviceKind.name}`;
        if (s.body === null) this.push(indent, head);
        else this.body(head, s.body, indent, s, false);
        return;
      }
      case "Boot": {
        const head = `boot ${s.protocol.name} ${s.path.raw}`;
        if (s.body === null) this.push(indent, head);
        else this.body(head, s.body, indent, s, false);
        return;
      }
      case "Cpuid":
        this.body("cpuid", s.items, indent, s, true);
        return;
      default:
        this.push(indent, this.inline(s));
    }
  }
}
