/** lang diagnostics → LSP diagnostics (same code, message and range as `vmdesc check`). */
import {
  type Diagnostic as LspDiagnostic,
  DiagnosticSeverity,
  DiagnosticTag,
  type Range,
} from "vscode-languageserver";
import type { Diagnostic, Severity, Span } from "../lang/diagnostics/types.ts";
import { LineIndex, pathToUri } from "./convert.ts";

export const SOURCE = "vmdesc";

const SEVERITY: Record<Severity, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  info: DiagnosticSeverity.Information,
};

/** Offset → position for any file, through its text (open buffer first). */
export class SpanMapper {
  readonly #indexes = new Map<string, LineIndex | null>();
  constructor(private readonly source: (path: string) => string | undefined) {}

  range(span: Span): Range | null {
    let idx = this.#indexes.get(span.file);
    if (idx === undefined) {
      const text = this.source(span.file);
      idx = text === undefined ? null : new LineIndex(text);
      this.#indexes.set(span.file, idx);
    }
    if (!idx) return null;
    const s = Math.min(span.start, span.end);
    const e = Math.max(span.start, span.end);
    return { start: idx.positionAt(s), end: idx.positionAt(e) };
  }
}

const ZERO: Range = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };

/**
 * Converts the diagnostics of one compile of `path` into what is published for it.
 * Diagnostics located in another file (an import) are shown on the `import` that leads
 * there (`importSpans` maps the imported path to that statement), with the real
 * location as related information, so a broken import is visible where it is used.
 */
export function toLspDiagnostics(
  diags: Diagnostic[],
  path: string,
  mapper: SpanMapper,
  importSpanFor: (file: string) => Span | null,
): LspDiagnostic[] {
  const out: LspDiagnostic[] = [];
  for (const d of diags) {
    let range: Range = ZERO;
    let message = d.message;
    const related: LspDiagnostic["relatedInformation"] = [];
    if (d.span && d.span.file === path) {
      range = mapper.range(d.span) ?? ZERO;
    } else if (d.span) {
      const at = importSpanFor(d.span.file);
      if (at) range = mapper.range(at) ?? ZERO;
      message = `in ${d.span.file}: ${d.message}`;
      const r = mapper.range(d.span);
      if (r) {
        related.push({ location: { uri: pathToUri(d.span.file), range: r }, message: d.message });
      }
    }
    for (const l of d.labels ?? []) {
      const r = mapper.range(l.span);
      if (r) {
        related.push({ location: { uri: pathToUri(l.span.file), range: r }, message: l.message });
      }
    }
    const lsp: LspDiagnostic = {
      range,
      severity: SEVERITY[d.severity] ?? DiagnosticSeverity.Error,
      code: d.code,
      source: SOURCE,
      // The message stays exactly `vmdesc check`'s; the hint shows in hover.
      message,
    };
    if (related.length) lsp.relatedInformation = related;
    if (d.code === "W0005") lsp.tags = [DiagnosticTag.Unnecessary];
    // Keep the lang diagnostic's identity so code actions can find its fixes.
    lsp.data = { code: d.code, start: d.span?.start ?? null, end: d.span?.end ?? null };
    out.push(lsp);
  }
  return out;
}
