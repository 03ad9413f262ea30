/**
 * One analysis of an open document: the incremental parse of its buffer, then lang's
 * compile (imports through the buffer-preferring host), kept for the feature handlers.
 */
import { compile, parse } from "../lang/mod.ts";
import type { IncrementalParser, ParseResult } from "../lang/parse.ts";
import type { Program } from "../lang/program.ts";
import type { Diagnostic } from "../lang/diagnostics/types.ts";
import type { Plan } from "../plan/types.ts";
import type * as A from "../lang/ast.ts";
import type { DenoHost } from "../host/disk_host.ts";
import type { Importers } from "./importers.ts";

export interface Analysis {
  version: number;
  text: string;
  /** This file's own tree (partial on syntax errors). */
  ast: A.Program;
  parseDiagnostics: Diagnostic[];
  /** Every diagnostic `vmdesc check` reports for this text. */
  diagnostics: Diagnostic[];
  program: Program | null;
  plans: Map<string, Plan>;
  /** Files the compile read (imports, boot payloads): re-check when one changes. */
  deps: Set<string>;
}

export function analyze(
  path: string,
  version: number,
  parser: IncrementalParser,
  host: DenoHost,
  incremental: boolean,
  importers: Importers,
): Analysis {
  const text = parser.text();
  // The incremental Matcher re-parses only what the edit disturbed; full mode is the
  // baseline the benchmark compares it with.
  const parsed: ParseResult = incremental ? parser.parse() : parse(text, path);
  host.touched.clear();
  // Files that are not open are read afresh for every analysis: editors do not all report
  // changes on disk (Neovim 0.7 has no didChangeWatchedFiles), and these files are small.
  host.invalidate();
  // `parsed` hands lang the incremental parse so compile does not parse the text again;
  // the files importing this one make it their library, as `vmdesc check DIR` does.
  const options = { file: path, host, parsed, importers: importers.of(path, host) };
  const result = compile(text, options);
  return {
    version,
    text,
    ast: parsed.ast,
    parseDiagnostics: parsed.diagnostics,
    diagnostics: result.diagnostics,
    program: result.program ?? null,
    plans: result.plans,
    deps: new Set([...host.touched].filter((p) => p !== path)),
  };
}
