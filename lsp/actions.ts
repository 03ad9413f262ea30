/**
 * Quick fixes: every diagnostic that carries machine-applicable `fixes` (a "did you
 * mean" spelling, a value rounded up to its alignment, ...) becomes a code action.
 */
import {
  type CodeAction,
  CodeActionKind,
  type CodeActionParams,
  type Diagnostic as LspDiagnostic,
  type TextEdit,
} from "vscode-languageserver";
import { pathToUri } from "./convert.ts";
import { SOURCE, toLspDiagnostics } from "./diagnostics.ts";
import type { Workspace } from "./mod.ts";

export function codeActions(ws: Workspace, p: CodeActionParams): CodeAction[] {
  const a = ws.analysis(p.textDocument.uri);
  const d = ws.get(p.textDocument.uri);
  if (!a || !d) return [];
  if (p.context.only && !p.context.only.some((k) => CodeActionKind.QuickFix.startsWith(k))) {
    return [];
  }
  const mapper = ws.mapper();
  const start = d.doc.offsetAt(p.range.start);
  const end = d.doc.offsetAt(p.range.end);
  const out: CodeAction[] = [];
  for (const diag of a.diagnostics) {
    if (!diag.fixes?.length || !diag.span || diag.span.file !== d.path) continue;
    // Diagnostics touching the requested range (a cursor inside or next to one counts).
    if (diag.span.end < start || diag.span.start > end) continue;
    const [lsp] = toLspDiagnostics([diag], d.path, mapper, () => null);
    // Prefer the client's own copy of the diagnostic, so editors link the fix to it.
    const clientCopy = p.context.diagnostics.find((c) => sameDiagnostic(c, lsp));
    for (const fix of diag.fixes) {
      const range = mapper.range(fix.span);
      if (!range) continue;
      const edit: TextEdit = { range, newText: fix.replacement };
      out.push({
        title: fix.title,
        kind: CodeActionKind.QuickFix,
        diagnostics: [clientCopy ?? lsp],
        isPreferred: diag.fixes.length === 1,
        edit: { changes: { [pathToUri(fix.span.file)]: [edit] } },
      });
    }
  }
  return out;
}

function sameDiagnostic(a: LspDiagnostic, b: LspDiagnostic): boolean {
  return a.code === b.code && (a.source ?? SOURCE) === SOURCE && a.message === b.message &&
    a.range.start.line === b.range.start.line &&
    a.range.start.character === b.range.start.character;
}
