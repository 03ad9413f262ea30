/**
 * The vmdesc language: parse, check and lower `.vmdesc` text to Plans; format it.
 *
 * Pure: no file system, no FFI. Files are read through the LangHost the caller passes
 * (cli/ gives a Deno-backed one, lsp/ one that prefers open buffers).
 */
import type { Diagnostic } from "./diagnostics/types.ts";
import type { HoleStrategy, Plan } from "./plan/types.ts";
import { checkMachine, checkProgram, dedupe } from "./check.ts";
import { lower } from "./lower.ts";
import { error, type LangHost, loadProgram, type Program } from "./program.ts";
import { suggest } from "./suggest.ts";

export type { Diagnostic, Fix, Label, Severity, Span } from "./diagnostics/types.ts";
export type { Plan } from "./plan/types.ts";
export type * as Ast from "./ast.ts";
export type { LangHost, LetSymbol, MachineSymbol, Program, SourceFile } from "./program.ts";
export { parse } from "./parse.ts";
export type { IncrementalParser, ParseResult } from "./parse.ts";
export { createIncrementalParser } from "./parse.ts";
export { format } from "./format.ts";
export type { FormatResult } from "./format.ts";
export { createMemoryHost, joinRelative } from "./host_memory.ts";
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

export interface CompileOptions {
  /** Path of the file (as the user named it); imports resolve relative to it. */
  file: string;
  host: LangHost;
  /** Lower only this machine (E0105 when it does not exist). */
  machine?: string;
  /** Override every machine's hole strategy (`boot --hole-strategy`). */
  holeStrategy?: HoleStrategy;
  /** Override the boot payload path, used as given (like QEMU -kernel). */
  kernel?: string;
  /** Override the kernel command line. */
  cmdline?: string;
  /**
   * The main file's parse, when the caller already has it (the LSP's IncrementalParser
   * re-parses only around an edit); must be the parse of exactly `text`.
   */
  parsed?: import("./parse.ts").ParseResult;
}

export interface CompileResult {
  /** Every diagnostic of every loaded file, errors and warnings, in source order. */
  diagnostics: Diagnostic[];
  /** One Plan per error-free machine of the main file (or just `machine`). */
  plans: Map<string, Plan>;
  program: Program;
}

export function compile(text: string, options: CompileOptions): CompileResult {
  const diags: Diagnostic[] = [];
  const program = loadProgram(text, options.file, options.host, diags, options.parsed);
  const plans = new Map<string, Plan>();
  const own = [...program.machines.values()].filter((m) =>
    m.file === program.main && !m.node.recovered
  );
  let targets = own;
  if (options.machine !== undefined) {
    const sym = program.machines.get(options.machine);
    if (sym?.node.recovered) {
      targets = []; // its syntax error is already reported
    } else if (!sym) {
      const s = suggest(options.machine, program.machines.keys());
      diags.push(
        error(
          "E0105",
          `there is no machine \`${options.machine}\``,
          null,
          s
            ? `did you mean \`${s}\`?`
            : `machines here: ${[...program.machines.keys()].join(", ") || "none"}`,
        ),
      );
      targets = [];
    } else targets = [sym];
  } else if (
    own.length === 0 &&
    !program.files.get(program.main)?.ast.items.some((i) => i.kind === "Machine") &&
    // A machine lost to a syntax error is still a machine.
    !diags.some((d) => d.code === "E0001" && d.span?.file === program.main)
  ) {
    diags.push(
      error(
        "E0404",
        "this file defines no machine",
        { file: options.file, start: 0, end: 0 },
        'add `machine NAME { memory 128 MiB  boot pvh "guest.elf" }`',
      ),
    );
  }
  for (const sym of targets) {
    const local: Diagnostic[] = [];
    const rm = checkMachine(program, sym, options.host, options, local);
    if (rm) {
      const plan = lower(rm, options.file, local);
      if (plan) plans.set(sym.name, plan);
    }
    diags.push(...local);
  }
  // With a syntax error, uses inside the broken lines are lost: "unused" would be noise.
  if (!diags.some((d) => d.code === "E0001")) checkProgram(program, diags);
  return { diagnostics: sortDiagnostics(dedupe(diags), options.file), plans, program };
}

/** Main file first, then by file name and position; span-less diagnostics first. */
function sortDiagnostics(diags: Diagnostic[], main: string): Diagnostic[] {
  return diags
    .map((d, i) => ({ d, i }))
    .sort((a, b) => {
      const sa = a.d.span;
      const sb = b.d.span;
      if (!sa || !sb) return (sa ? 1 : 0) - (sb ? 1 : 0) || a.i - b.i;
      if (sa.file !== sb.file) {
        if (sa.file === main) return -1;
        if (sb.file === main) return 1;
        return sa.file < sb.file ? -1 : 1;
      }
      return sa.start - sb.start || a.i - b.i;
    })
    .map((x) => x.d);
}
