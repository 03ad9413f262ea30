/**
 * The shape of every message `lang/` reports. Modelled on TypeScript's and rustc's
 * diagnostics: a stable code, a severity, a primary span, secondary labels and a hint.
 */
import type { Severity } from "../../plan/codes.ts";

export type { Severity };

/** A byte range in one source file: offsets into the text (UTF-16 code units, as JS strings). */
export interface Span {
  /** The file as the user named it (or "<input>"). */
  file: string;
  start: number;
  end: number;
}

export interface Label {
  span: Span;
  message: string;
}

export interface Diagnostic {
  /** Stable code from `codes.ts`, e.g. "E0201". */
  code: string;
  severity: Severity;
  message: string;
  /** Primary location, or null for file-less problems (e.g. an unknown --machine). */
  span: Span | null;
  /** Secondary locations ("first defined here", "overlaps this"). */
  labels: Label[];
  /** A concrete next step for the user, or null. */
  hint: string | null;
  /**
   * Machine-applicable fixes (used by `vmdesc lsp` code actions): replace span with text.
   * Present only where the fix is certain (a "did you mean" spelling, an aligned value).
   */
  fixes?: Fix[];
}

export interface Fix {
  title: string;
  span: Span;
  replacement: string;
}
