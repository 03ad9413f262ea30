/**
 * Building diagnostics: every part of `lang/` that reports makes them here, so each one has
 * the same shape (and the same key order in JSON) and a code from the table in
 * plan/codes.ts (a typo in a code is a type error).
 */
import type { Code, Severity } from "../../plan/codes.ts";
import type { Diagnostic, Fix, Label, Span } from "./types.ts";

/** A list diagnostics are pushed to as a pass finds them. */
export type Diags = Diagnostic[];

/**
 * A diagnostic of one severity: its code, message and primary span, then a hint (a
 * concrete next step), secondary labels, and fixes (only where the fix is certain).
 */
export type MakeDiagnostic = (
  code: Code,
  message: string,
  span: Span | null,
  hint?: string | null,
  labels?: Label[],
  fixes?: Fix[],
) => Diagnostic;

function maker(severity: Severity): MakeDiagnostic {
  return (code, message, span, hint = null, labels = [], fixes) => {
    const d: Diagnostic = { code, severity, message, span, labels, hint };
    if (fixes && fixes.length) d.fixes = fixes;
    return d;
  };
}

export const error: MakeDiagnostic = maker("error");
export const warning: MakeDiagnostic = maker("warning");
