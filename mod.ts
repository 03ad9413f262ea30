/**
 * vmdesc as a library: compile `.vmdesc` text to Plans, then boot them.
 *
 * ```ts
 * import { compileFile, createMachine } from "./mod.ts";
 * const { plan, diagnostics } = await compileFile("examples/hello.vmdesc");
 * if (!plan) throw new Error(diagnostics.map((d) => d.message).join("\n"));
 * using m = await createMachine(plan);
 * const serial = new Response(m.serial).text();
 * const r = await m.run({ timeout: 10 });   // r.exitStatus === 0 (hello declares `success 42`)
 * console.log(await serial);
 * ```
 *
 * This root module is where `lang/` and `runtime/` meet; `runtime/` itself never imports
 * the compiler (it only knows Plans).
 */
import { compile, type CompileResult } from "./lang/mod.ts";
import type { Diagnostic } from "./lang/diagnostics/types.ts";
import { error } from "./lang/diagnostics/make.ts";
import type { HoleStrategy, Plan } from "./plan/types.ts";
import { DenoHost } from "./host/disk_host.ts";
import { describeFsError } from "./host/fs_errors.ts";

export * from "./runtime/mod.ts";
export { compile } from "./lang/mod.ts";
export type { Diagnostic } from "./lang/diagnostics/types.ts";

export interface CompileTextOptions {
  /** Name used in diagnostics and as the base for relative imports/payloads (default "<input>"). */
  file?: string;
  /** Pick one machine (needed when the text defines several). */
  machine?: string;
  holeStrategy?: HoleStrategy;
  /** Override the boot payload, used as given. */
  kernel?: string;
  cmdline?: string;
}

export interface Compiled {
  /** Every diagnostic, errors and warnings. */
  diagnostics: Diagnostic[];
  /** All Plans by machine name (empty when there are errors). */
  plans: Map<string, Plan>;
  /** The Plan when exactly one machine was lowered (or the one `machine` named), else null. */
  plan: Plan | null;
  /** True when any diagnostic is an error. */
  hasErrors: boolean;
}

function wrap(r: CompileResult, machine: string | undefined): Compiled {
  const hasErrors = r.diagnostics.some((d) => d.severity === "error");
  const plans = r.plans;
  const plan = machine !== undefined
    ? plans.get(machine) ?? null
    : plans.size === 1
    ? [...plans.values()][0]
    : null;
  return { diagnostics: r.diagnostics, plans, plan: hasErrors ? null : plan, hasErrors };
}

/** Compiles text; imports and payload checks read the disk relative to `file`. */
export function compileText(text: string, opts: CompileTextOptions = {}): Compiled {
  const host = new DenoHost();
  const file = opts.file ?? "<input>";
  host.files.set(file, text);
  return wrap(compile(text, { ...opts, file, host }), opts.machine);
}

/** Reads and compiles a `.vmdesc` file. */
export async function compileFile(
  path: string,
  opts: Omit<CompileTextOptions, "file"> = {},
): Promise<Compiled> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    // The same coded error as `vmdesc check` on an unreadable file.
    const diagnostic = error(
      "E2002",
      `cannot read '${path}': ${describeFsError(e)}`,
      null,
      "check the path and its permissions",
    );
    return { diagnostics: [diagnostic], plans: new Map(), plan: null, hasErrors: true };
  }
  return compileText(text, { ...opts, file: path });
}
