/**
 * The vmdesc language: parse, check and lower `.vmdesc` text to Plans; format it.
 *
 * Pure: no file system, no FFI. Files are read through the LangHost the caller passes
 * (cli/ gives a Deno-backed one, lsp/ one that prefers open buffers).
 */
// Loading lang/parse.ts installs the Ohm fallback of parse() (lang/parse_lean.ts), so
// everything exported here parses any text. The CLI imports lang/compile.ts instead and
// loads Ohm only when a file needs it (lang/ohm_on_demand.ts).
export { compile, compileFiles } from "./compile.ts";
export type { CompileOptions, CompileResult, SourceInput } from "./compile.ts";

export type { Diagnostic, Fix, Label, Severity, Span } from "./diagnostics/types.ts";
export type { Plan } from "../plan/types.ts";
export type * as Ast from "./ast.ts";
export type { LangHost, LetSymbol, MachineSymbol, Program, SourceFile } from "./program.ts";
export { parse } from "./parse.ts";
export type { IncrementalParser, ParseResult } from "./parse.ts";
export { createIncrementalParser } from "./parse.ts";
export { format } from "./format.ts";
export type { FormatResult } from "./format.ts";
export { createMemoryHost } from "./host_memory.ts";
export { resolvePath } from "../plan/paths.ts";
export {
  definitionAt,
  evaluateAt,
  machineSymbols,
  nodeAt,
  nodePathAt,
  referencesOf,
} from "./query.ts";
export type { EvaluatedValue, MachineInfo } from "./query.ts";
export { evalExpr, hex, humanSize, programContext } from "./program.ts";
export type { EvalContext } from "./program.ts";
export * as specs from "./specs.ts";
