/**
 * compile(): a main file (and its imports, through the LangHost) to diagnostics and one
 * Plan per machine. Imports only lang/parse_lean.ts, not ohm-js: see lang/ohm_on_demand.ts
 * for callers that load Ohm only when a file does not parse (lang/mod.ts loads it always).
 */
import type { Diagnostic } from "./diagnostics/types.ts";
import type { HoleStrategy, Plan } from "../plan/types.ts";
import { checkMachine, checkProgram } from "./check.ts";
import { dedupe } from "./diagnostics/dedupe.ts";
import { lower } from "./lower.ts";
import { type LangHost, loadProgram, type Program } from "./program.ts";
import { error } from "./diagnostics/make.ts";
import { suggest } from "./suggest.ts";
import type { ParseResult } from "./parse_lean.ts";

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
  parsed?: ParseResult;
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
    if (rm) plans.set(sym.name, lower(rm, options.file));
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
