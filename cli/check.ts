/**
 * `vmdesc check FILE...`: parse, resolve and check; print every diagnostic rustc-style
 * (or as versioned JSON with `--format json`). Exit 1 when any error was found.
 */
import { parseArgs, UsageError } from "./args.ts";
import { DenoHost, expandInputs } from "./host.ts";
import { out, usageError, useColor } from "./output.ts";
import { readInput, reportUnreadable } from "./input.ts";
import { compileFiles, type SourceInput } from "../lang/compile.ts";
import { withOhmOnDemand } from "../lang/ohm_on_demand.ts";
import {
  counts,
  dedupe,
  type FileResult,
  jsonReport,
  renderDiagnostics,
  renderSummary,
} from "../lang/diagnostics/render.ts";

export const HELP = `Check .vmdesc files and report diagnostics.

Usage: vmdesc check [options] FILE...

  FILE                 a .vmdesc file, or a folder (every .vmdesc under it);
                       '-' reads standard input (named <stdin>). A file another
                       one imports is checked as a library (it need not define a
                       machine; a constant its importers use is used)

Options:
  --format human|json  output style (default human). json is versioned and
                       documented in docs/diagnostics.md ("JSON output")
  --machine NAME       check only this machine (default: every machine)
  -h, --help           show this help

Exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage error or
an input file that cannot be read.
`;

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(args, { format: { type: "string" }, machine: { type: "string" } });
  } catch (e) {
    if (e instanceof UsageError) return usageError(e, "check");
    throw e;
  }
  if (parsed.flags.help) {
    out(HELP);
    return 0;
  }
  const format = (parsed.flags.format as string | undefined) ?? "human";
  if (format !== "human" && format !== "json") {
    return usageError(
      { message: `unknown format '${format}'`, hint: "use --format human or --format json" },
      "check",
    );
  }
  if (parsed.positionals.length === 0) {
    return usageError({ message: "no input files", hint: "vmdesc check FILE..." }, "check");
  }
  const machine = parsed.flags.machine as string | undefined;

  const host = new DenoHost();
  const inputs: SourceInput[] = [];
  let unreadable = false;
  for (const file of expandInputs(parsed.positionals)) {
    const input = await readInput(file, host);
    if ("error" in input) {
      reportUnreadable(file, input.error);
      unreadable = true;
      continue;
    }
    inputs.push({ file: input.name, text: input.text });
  }
  // Checked together: a file another one imports is checked as its library.
  const compiled = await withOhmOnDemand(() => compileFiles(inputs, { host, machine }));
  const results: FileResult[] = compiled.map((result, k) => ({
    path: inputs[k].file,
    diagnostics: result.diagnostics,
    machines: [...result.plans.keys()],
  }));

  const all = dedupe(results.flatMap((r) => r.diagnostics));
  if (format === "json") {
    out(JSON.stringify(jsonReport(results, host.source), null, 2) + "\n");
  } else {
    const color = useColor(Deno.stdout);
    if (all.length) {
      out(renderDiagnostics(all, host.source, { color }) + "\n");
      out(renderSummary(all, { color }));
    } else if (results.length) {
      const n = results.length;
      out(`ok: ${n} file${n === 1 ? "" : "s"} checked, no problems\n`);
    }
  }
  if (unreadable) return 2;
  return counts(all).error > 0 ? 1 : 0;
}
