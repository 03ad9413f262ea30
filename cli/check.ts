/**
 * `vmdesc check FILE...`: parse, resolve and check; print every diagnostic rustc-style
 * (or as versioned JSON with `--format json`). Exit 1 when any error was found.
 */
import { DenoHost, expandInputs } from "./host.ts";
import { chosenFormat, failure, out, printDiagnostics, startCommand } from "./output.ts";
import { readInput, reportUnreadable, unreadableDiagnostic } from "./input.ts";
import { compileFiles, type SourceInput } from "../lang/compile.ts";
import { withOhmOnDemand } from "../lang/ohm_on_demand.ts";
import { counts, dedupe, type FileResult, jsonReport } from "../lang/diagnostics/report.ts";

export const HELP = `Check .vmdesc files and report diagnostics.

Usage: vmdesc check [options] [FILE...]

  FILE                 a .vmdesc file, or a folder (every .vmdesc under it);
                       '-' reads standard input (named <stdin>). Without FILE:
                       the current directory. A file another one imports is
                       checked as a library (it need not define a machine; a
                       constant its importers use is used)
Options:
  --format text|json   output style (default text, rustc-style). json is
                       versioned and documented in docs/diagnostics.md
                       ("Machine-readable output")
  --machine NAME       check only this machine (default: every machine)
  --no-color           no colors (also NO_COLOR=1; colors only on a terminal)
  -h, --help           show this help

Exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage error or
an input file that cannot be read.
`;

export async function run(args: string[]): Promise<number> {
  const parsed = startCommand(
    "check",
    args,
    { format: { type: "string" }, machine: { type: "string" } },
    HELP,
  );
  if (typeof parsed === "number") return parsed;
  // `human` was this flag's first name for text; kept so old scripts keep working.
  const format = chosenFormat("check", parsed, ["text", "json"], { human: "text" });
  if (typeof format === "number") return format;
  // No FILE: the current directory, as `cargo check`, `terraform validate`, `cue vet` do.
  const inputs = parsed.positionals.length ? parsed.positionals : ["."];
  const machine = parsed.flags.machine as string | undefined;

  const host = new DenoHost();
  const results: FileResult[] = [];
  let unreadable = false;
  const files = expandInputs(inputs);
  if (files.length === 0) {
    failure(
      "E2002",
      `no .vmdesc files in ${inputs.join(", ")}`,
      "name the files to check, or run vmdesc in the folder that holds them",
    );
    return 2;
  }
  const sources: SourceInput[] = [];
  for (const file of files) {
    const input = await readInput(file, host);
    if ("error" in input) {
      // In the JSON report too: a tool reading it must see a failure, not an empty pass.
      const diagnostic = unreadableDiagnostic(file, input.error);
      if (format === "json") {
        results.push({ path: file, diagnostics: [diagnostic], machines: [] });
      } else reportUnreadable(file, input.error);
      unreadable = true;
      continue;
    }
    sources.push({ file: input.name, text: input.text });
  }
  // Checked together: a file another one imports is checked as its library.
  const compiled = await withOhmOnDemand(() => compileFiles(sources, { host, machine }));
  compiled.forEach((result, k) =>
    results.push({
      path: sources[k].file,
      diagnostics: result.diagnostics,
      machines: [...result.plans.keys()],
    })
  );

  const all = dedupe(results.flatMap((r) => r.diagnostics));
  if (format === "json") {
    out(JSON.stringify(jsonReport(results, host.source), null, 2) + "\n");
  } else {
    if (all.length) {
      await printDiagnostics(all, host.source, Deno.stdout);
    } else if (results.length) {
      const n = results.length;
      out(`ok: ${n} file${n === 1 ? "" : "s"} checked, no problems\n`);
    }
  }
  if (unreadable) return 2;
  return counts(all).error > 0 ? 1 : 0;
}
