/**
 * `vmdesc fmt [FILE...] [--check] [--diff] [--format text|json]`: the canonical layout,
 * comments kept. Files are rewritten atomically and only when they change; a file with
 * syntax errors is left alone and its diagnostics are shown. `fmt -` filters stdin to
 * stdout (for editors). Without FILE, every .vmdesc under the current directory.
 */
import { DenoHost, expandInputs } from "./host.ts";
import {
  chosenFormat,
  err,
  failure,
  out,
  printDiagnostics,
  startCommand,
  usageError,
  useColor,
  writeOutput,
} from "./output.ts";
import { readInput, reportUnreadable, unreadableDiagnostic } from "./input.ts";
import { format } from "../lang/format.ts";
import { withOhmOnDemand } from "../lang/ohm_on_demand.ts";
import { counts, diagnosticToJson, type JsonDiagnostic } from "../lang/diagnostics/report.ts";
import type { Diagnostic } from "../lang/diagnostics/types.ts";

export const HELP = `Format .vmdesc files in the canonical layout (comments are kept).

Usage: vmdesc fmt [options] [FILE...]  (a folder means every .vmdesc under it;
                                       no FILE: the current directory)
       vmdesc fmt -            read standard input, write the result to standard output

Options:
  --check              list the files that are not formatted, change nothing;
                       exit 1 if there are any
  --diff               show what formatting would change as a unified diff,
                       change nothing (exit 1 with --check when there is any)
  --format text|json   text (default), or one JSON document describing each file
                       (version 1: files[] with path and status unchanged,
                       formatted, unformatted or error; diagnostics[] as in
                       'vmdesc check --format json')
  --no-color           no colors (also NO_COLOR=1)
  -h, --help           show this help

Files are rewritten in place, atomically, and only when their layout changes. A
file with syntax errors is left untouched and its diagnostics are shown.
Exit status: 0 ok, 1 syntax errors (or --check found unformatted files),
2 usage error or an unreadable file.
`;

/** What happened to one file, for the JSON report. */
type Status = "unchanged" | "formatted" | "unformatted" | "error";

export async function run(args: string[]): Promise<number> {
  const parsed = startCommand("fmt", args, {
    check: { type: "boolean" },
    diff: { type: "boolean" },
    format: { type: "string" },
  }, HELP);
  if (typeof parsed === "number") return parsed;
  const as = chosenFormat("fmt", parsed, ["text", "json"], { human: "text" });
  if (typeof as === "number") return as;
  // No FILE: the current directory, as `deno fmt`, `cargo fmt` and `terraform fmt` do.
  const inputs = parsed.positionals.length ? parsed.positionals : ["."];
  const files = expandInputs(inputs);
  if (files.length === 0) {
    failure(
      "E2002",
      `no .vmdesc files in ${inputs.join(", ")}`,
      "name the files to format, or run vmdesc in the folder that holds them",
    );
    return 2;
  }
  if (files.includes("-") && files.length > 1) {
    return usageError(
      { message: "'-' (stdin) cannot be mixed with files", hint: "vmdesc fmt -" },
      "fmt",
    );
  }
  const checkOnly = parsed.flags.check === true;
  const diff = parsed.flags.diff === true;
  const json = as === "json";
  if (json && files.includes("-") && !checkOnly && !diff) {
    return usageError(
      {
        message: "'fmt -' prints the formatted text; --format json has nothing to add",
        hint: "add --check or --diff for a JSON report on standard input",
      },
      "fmt",
    );
  }
  const changeNothing = checkOnly || diff;
  const host = new DenoHost();
  let status = 0;
  const unformatted: string[] = [];
  const report: { path: string; status: Status }[] = [];
  const reportDiagnostics: JsonDiagnostic[] = [];
  let rewritten = 0;

  for (const file of files) {
    const input = await readInput(file, host);
    if ("error" in input) {
      if (json) {
        report.push({ path: file, status: "error" });
        reportDiagnostics.push(
          diagnosticToJson(unreadableDiagnostic(file, input.error), host.source),
        );
      } else reportUnreadable(file, input.error);
      status = 2;
      continue;
    }
    const result = await withOhmOnDemand(() => format(input.text, input.name));
    if (counts(result.diagnostics).error > 0) {
      if (json) {
        report.push({ path: input.name, status: "error" });
        reportDiagnostics.push(...jsonDiagnostics(result.diagnostics, host.source));
      } else await printDiagnostics(result.diagnostics, host.source);
      status = Math.max(status, 1);
      // stdin: echo the input back so an editor piping through fmt loses nothing.
      if (file === "-" && !changeNothing) out(input.text);
      continue;
    }
    const changed = result.text !== input.text;
    if (changed && diff && !json) out(await unifiedDiff(input.name, input.text, result.text));
    if (file === "-" && !changeNothing) {
      out(result.text);
      continue;
    }
    if (!changed) {
      report.push({ path: input.name, status: "unchanged" });
      continue;
    }
    if (changeNothing) {
      unformatted.push(input.name);
      report.push({ path: input.name, status: "unformatted" });
      continue;
    }
    const written = await writeOutput(
      file,
      result.text,
      "check the file and its directory are writable; the original is left as it was",
    );
    if (written) rewritten++;
    else status = 2;
    report.push({ path: input.name, status: written ? "formatted" : "error" });
  }
  if (checkOnly && unformatted.length) status = Math.max(status, 1);
  if (json) {
    const doc = { version: 1, files: report, diagnostics: reportDiagnostics };
    out(JSON.stringify(doc, null, 2) + "\n");
    return status;
  }
  if (checkOnly && unformatted.length) {
    if (!diff) out(unformatted.map((f) => f + "\n").join(""));
    const n = unformatted.length;
    err(
      `${n} file${n === 1 ? "" : "s"} would be reformatted; run 'vmdesc fmt' on ${
        n === 1 ? "it" : "them"
      }\n`,
    );
  } else if (!changeNothing && rewritten > 0) {
    err(`formatted ${rewritten} file${rewritten === 1 ? "" : "s"}\n`);
  }
  return status;
}

function jsonDiagnostics(
  diags: Diagnostic[],
  sources: (file: string) => string | undefined,
): JsonDiagnostic[] {
  const cache = new Map<string, number[]>();
  return diags.map((d) => diagnosticToJson(d, sources, cache));
}

/**
 * What formatting changes in `path`, as a unified diff (3 lines of context) that
 * `patch -p0` and `git apply -p0` accept; colored on a terminal.
 */
async function unifiedDiff(path: string, before: string, after: string): Promise<string> {
  const { createTwoFilesPatch } = await import("diff"); // jsdiff, only when asked for
  const text = createTwoFilesPatch(path, path, before, after, "(original)", "(formatted)", {
    context: 3,
    headerOptions: { includeIndex: false, includeUnderline: false, includeFileHeaders: true },
  });
  if (!useColor(Deno.stdout)) return text;
  return text.split("\n").map((l) =>
    l.startsWith("+++") || l.startsWith("---")
      ? `\x1b[1m${l}\x1b[0m`
      : l.startsWith("@@")
      ? `\x1b[36m${l}\x1b[0m`
      : l.startsWith("+")
      ? `\x1b[32m${l}\x1b[0m`
      : l.startsWith("-")
      ? `\x1b[31m${l}\x1b[0m`
      : l
  ).join("\n");
}
