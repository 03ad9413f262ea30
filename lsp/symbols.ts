/** Document outline: constants, imports, machines → PCI hole, devices, PCI functions, boot. */
import { type DocumentSymbol, type DocumentSymbolParams, SymbolKind } from "vscode-languageserver";
import type * as A from "../lang/ast.ts";
import type { ConstValue } from "../lang/program.ts";
import type { Workspace } from "./mod.ts";
import { rangeOf } from "./convert.ts";

export function documentSymbols(ws: Workspace, p: DocumentSymbolParams): DocumentSymbol[] {
  const a = ws.analysis(p.textDocument.uri);
  const d = ws.get(p.textDocument.uri);
  if (!a || !d) return [];
  const r = (s: A.Span) => rangeOf(d.doc, s.start, s.end);
  const sym = (
    name: string,
    kind: SymbolKind,
    node: A.Node,
    sel: A.Span,
    detail?: string,
    children?: DocumentSymbol[],
  ): DocumentSymbol => ({
    name,
    kind,
    range: r(node.span),
    selectionRange: r(sel),
    ...(detail ? { detail } : {}),
    ...(children ? { children } : {}),
  });
  const out: DocumentSymbol[] = [];
  for (const item of a.ast.items) {
    if (item.kind === "Import") {
      out.push(sym(item.path.value, SymbolKind.File, item, item.path.span, "import"));
    } else if (item.kind === "Let") {
      const v = a.program?.lets.get(item.name.name);
      const detail = v && v.file === d.path && v.value !== null
        ? `= ${fmtValue(v.value)}`
        : undefined;
      out.push(sym(item.name.name, SymbolKind.Constant, item, item.name.span, detail));
    } else if (item.kind === "Machine") {
      const kids: DocumentSymbol[] = [];
      for (const s of item.settings) {
        if (s.kind === "PciHole") {
          const holeKids = (s.body ?? []).filter((h): h is A.Ecam => h.kind === "Ecam").map((e) =>
            sym("ecam", SymbolKind.Struct, e, e.span)
          );
          kids.push(sym("pci_hole", SymbolKind.Namespace, s, s.span, undefined, holeKids));
        } else if (s.kind === "Device") {
          const name = s.name?.name ?? s.deviceKind.name;
          kids.push(
            sym(
              name,
              SymbolKind.Object,
              s,
              (s.name ?? s.deviceKind).span,
              `device ${s.deviceKind.name}`,
            ),
          );
        } else if (s.kind === "Pci") {
          kids.push(
            sym(
              `${s.address.raw} ${s.deviceKind.name}`,
              SymbolKind.Object,
              s,
              s.address.span,
              "pci",
            ),
          );
        } else if (s.kind === "Boot") {
          kids.push(
            sym(`boot ${s.protocol.name}`, SymbolKind.Event, s, s.protocol.span, s.path.value),
          );
        } else if (s.kind === "Prop") {
          kids.push(sym(s.name.name, SymbolKind.Property, s, s.name.span));
        } else if (s.kind === "Cpuid") {
          kids.push(sym("cpuid", SymbolKind.Struct, s, s.span));
        }
      }
      const detail = item.base ? `extends ${item.base.name}` : "machine";
      out.push(sym(item.name.name, SymbolKind.Class, item, item.name.span, detail, kids));
    }
  }
  return out;
}

function fmtValue(v: ConstValue): string {
  if (typeof v !== "bigint") return JSON.stringify(v.text);
  return v < 10n ? v.toString() : `${v} (0x${v.toString(16)})`;
}
