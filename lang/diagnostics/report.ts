/**
 * The parts of diagnostic output that need no terminal: positions (1-based lines,
 * code-point columns), counts, and the versioned JSON report of `check --format json`.
 * Kept apart from the human renderer (render.ts), which loads a Unicode width library,
 * so a command that prints no diagnostics, or prints JSON, never loads it.
 *
 * Columns: 1-based, counted in Unicode code points (what a person counts, and what
 * Terraform's JSON does). Ends are exclusive: `end` is the position just after the span.
 */
import type { Diagnostic, Label, Severity, Span } from "./types.ts";
import { CODES, isKnownCode } from "../../plan/codes.ts";
import { dedupe } from "./dedupe.ts";

export type SourceLookup = (file: string) => string | undefined;

// ── positions ──────────────────────────────────────────────────────────────

export interface Position {
  /** 1-based line. */
  line: number;
  /** 1-based column in code points. */
  column: number;
}

/** Offsets of the first character of every line; "\r\n", "\n" and lone "\r" end a line. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    }
  }
  return starts;
}

/** Index (0-based) of the line holding `offset`. */
export function lineOf(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function codePointsBetween(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

export function clamp(offset: number, text: string): number {
  if (!Number.isFinite(offset) || offset < 0) return 0;
  return Math.min(Math.floor(offset), text.length);
}

/** 1-based line and code-point column of a UTF-16 offset. */
export function positionAt(text: string, offset: number, starts = lineStarts(text)): Position {
  const off = clamp(offset, text);
  const line = lineOf(starts, off);
  // A byte order mark is not a column (editors do not show it).
  const from = line === 0 && text.charCodeAt(0) === 0xfeff ? Math.min(1, off) : starts[line];
  return { line: line + 1, column: codePointsBetween(text, from, off) + 1 };
}

/** "2 errors, 1 warning" (empty string when there is nothing). */
export function countText(diags: Diagnostic[]): string {
  const n = counts(diags);
  const parts: string[] = [];
  if (n.error) parts.push(plural(n.error, "error"));
  if (n.warning) parts.push(plural(n.warning, "warning"));
  if (n.info) parts.push(plural(n.info, "note"));
  return parts.join(", ");
}

export function counts(diags: Diagnostic[]): Record<Severity, number> {
  const n: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const d of diags) n[d.severity] = (n[d.severity] ?? 0) + 1;
  return n;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// ── JSON ───────────────────────────────────────────────────────────────────

/** Version of the JSON shape below; bump on incompatible changes (documented in docs/diagnostics.md). */
export const DIAGNOSTICS_JSON_VERSION = 1;

export interface JsonRange {
  start: Position;
  end: Position;
}

export interface JsonLabel {
  file: string;
  range: JsonRange | null;
  message: string;
}

export interface JsonFix {
  title: string;
  file: string;
  range: JsonRange | null;
  replacement: string;
}

export interface JsonDiagnostic {
  code: string;
  severity: Severity;
  /** The code's title from the code table ("overlapping regions"). */
  title: string | null;
  message: string;
  file: string | null;
  range: JsonRange | null;
  labels: JsonLabel[];
  hint: string | null;
  fixes: JsonFix[];
}

export interface JsonFile {
  path: string;
  /** No errors in this file or anything it imports. */
  valid: boolean;
  error_count: number;
  warning_count: number;
  /** Machines the file defines that lowered to a Plan. */
  machines: string[];
}

export interface JsonReport {
  version: number;
  valid: boolean;
  error_count: number;
  warning_count: number;
  files: JsonFile[];
  diagnostics: JsonDiagnostic[];
}

export function rangeOf(
  span: Span,
  sources: SourceLookup,
  cache?: Map<string, number[]>,
): JsonRange | null {
  const text = sources(span.file);
  if (text === undefined) return null;
  let starts = cache?.get(span.file);
  if (!starts) {
    starts = lineStarts(text);
    cache?.set(span.file, starts);
  }
  const s = Math.min(span.start, span.end);
  const e = Math.max(span.start, span.end);
  return { start: positionAt(text, s, starts), end: positionAt(text, e, starts) };
}

export function diagnosticToJson(
  d: Diagnostic,
  sources: SourceLookup,
  cache = new Map<string, number[]>(),
): JsonDiagnostic {
  const label = (l: Label): JsonLabel => ({
    file: l.span.file,
    range: rangeOf(l.span, sources, cache),
    message: l.message,
  });
  return {
    code: d.code,
    severity: d.severity,
    title: isKnownCode(d.code) ? CODES[d.code].title : null,
    message: d.message,
    file: d.span ? d.span.file : null,
    range: d.span ? rangeOf(d.span, sources, cache) : null,
    labels: (d.labels ?? []).map(label),
    hint: d.hint ?? null,
    fixes: (d.fixes ?? []).map((f) => ({
      title: f.title,
      file: f.span.file,
      range: rangeOf(f.span, sources, cache),
      replacement: f.replacement,
    })),
  };
}

export interface FileResult {
  path: string;
  diagnostics: Diagnostic[];
  machines: string[];
}

/** The whole `check --format json` document. */
export function jsonReport(results: FileResult[], sources: SourceLookup): JsonReport {
  const cache = new Map<string, number[]>();
  const all = dedupe(results.flatMap((r) => r.diagnostics));
  const n = counts(all);
  return {
    version: DIAGNOSTICS_JSON_VERSION,
    valid: n.error === 0,
    error_count: n.error,
    warning_count: n.warning,
    files: results.map((r) => {
      const c = counts(r.diagnostics);
      return {
        path: r.path,
        valid: c.error === 0,
        error_count: c.error,
        warning_count: c.warning,
        machines: r.machines,
      };
    }),
    diagnostics: all.map((d) => diagnosticToJson(d, sources, cache)),
  };
}

export { dedupe };
