/** Whole-document formatting: exactly `vmdesc fmt`'s output, as one full-range edit. */
import type { DocumentFormattingParams, TextEdit } from "vscode-languageserver";
import { format } from "../lang/mod.ts";
import type { Workspace } from "./mod.ts";

export function formatDocument(ws: Workspace, p: DocumentFormattingParams): TextEdit[] {
  const d = ws.get(p.textDocument.uri);
  if (!d) return [];
  const text = d.doc.getText();
  const r = format(text, d.path);
  // The formatter refuses text it cannot parse; then there is nothing to apply.
  if (r.diagnostics.some((x) => x.severity === "error")) return [];
  if (r.text === text) return [];
  return [{
    range: { start: { line: 0, character: 0 }, end: d.doc.positionAt(text.length) },
    newText: r.text,
  }];
}
