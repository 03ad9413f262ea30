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
import { normalize } from "../plan/paths.ts";

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
  /**
   * Programs of other files that import this one (checked together, e.g. `check DIR`): it
   * is their library. A library need not define a machine (no E0404), and its constant is
   * unused (W0005) only when none of them uses it either.
   */
  importers?: Program[];
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
  // Machines error recovery rebuilt are checked too (one typo must not hide the other
  // errors), never lowered.
  const own = [...program.machines.values()].filter((m) => m.file === program.main);
  let targets = own;
  if (options.machine !== undefined) {
    const sym = program.machines.get(options.machine);
    if (!sym) {
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
    !options.importers?.length &&
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
    if (rm && !sym.node.recovered) plans.set(sym.name, lower(rm, options.file));
    for (const d of local) diags.push(d); // (no spread: may be huge)
  }
  // With a syntax error, uses inside the broken lines are lost: "unused" would be noise.
  if (!diags.some((d) => d.code === "E0001")) {
    checkProgram(program, diags, options.importers ?? []);
  }
  return { diagnostics: sortDiagnostics(dedupe(diags), options.file), plans, program };
}

/** One file of a set checked together (`vmdesc check DIR`). */
export interface SourceInput {
  file: string;
  text: string;
}

/**
 * Compiles a set of files checked together, as `vmdesc check DIR` does: a file that
 * another file of the set imports (directly or not) is a library and is checked as one
 * (see CompileOptions.importers). Results are in input order.
 */
export function compileFiles(
  inputs: SourceInput[],
  options: Omit<CompileOptions, "file" | "parsed" | "importers">,
): CompileResult[] {
  const results = inputs.map((i) => compile(i.text, { ...options, file: i.file }));
  const key = (p: string) => normalize(p);
  const importers = new Map<string, Program[]>();
  results.forEach((r, k) => {
    for (const f of r.program.files.keys()) {
      if (f === inputs[k].file) continue;
      const list = importers.get(key(f)) ?? [];
      list.push(r.program);
      importers.set(key(f), list);
    }
  });
  return results.map((r, k) => {
    const by = importers.get(key(inputs[k].file));
    return by ? compile(inputs[k].text, { ...options, file: inputs[k].file, importers: by }) : r;
  });
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
