/**
 * `vmdesc fmt FILE... [--check]`: the canonical layout, comments kept.
 * Files are rewritten atomically and only when they change; a file with syntax errors is
 * left alone and its diagnostics are shown. `fmt -` filters stdin to stdout (for editors).
 */
import { parseArgs, UsageError } from "./args.ts";
import { DenoHost, expandInputs } from "./host.ts";
import {
  describeFsError,
  err,
  failure,
  out,
  printDiagnostics,
  usageError,
  writeFileAtomic,
} from "./output.ts";
import { readInput, reportUnreadable } from "./input.ts";
import { format } from "../lang/format.ts";
import { withOhmOnDemand } from "../lang/ohm_on_demand.ts";
import { counts } from "../lang/diagnostics/report.ts";

export const HELP = `Format .vmdesc files in the canonical layout (comments are kept).

Usage: vmdesc fmt [options] FILE...   (a folder means every .vmdesc under it)
       vmdesc fmt -            read standard input, write the result to standard output

Options:
  --check      change nothing; list the files that are not formatted and exit 1
               if there are any
  -h, --help   show this help

Files are rewritten in place, atomically, and only when their layout changes. A
file with syntax errors is left untouched and its diagnostics are shown.
Exit status: 0 ok, 1 syntax errors (or --check found unformatted files),
2 usage error or an unreadable file.
`;

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(args, { check: { type: "boolean" } });
  } catch (e) {
    if (e instanceof UsageError) return usageError(e, "fmt");
    throw e;
  }
  if (parsed.flags.help) {
    out(HELP);
    return 0;
  }
  const files = expandInputs(parsed.positionals);
  if (files.length === 0) {
    return usageError(
      { message: "no input files", hint: "vmdesc fmt FILE... (or 'vmdesc fmt -')" },
      "fmt",
    );
  }
  if (files.includes("-") && files.length > 1) {
    return usageError(
      { message: "'-' (stdin) cannot be mixed with files", hint: "vmdesc fmt -" },
      "fmt",
    );
  }
  const checkOnly = parsed.flags.check === true;
  const host = new DenoHost();
  let status = 0;
  const unformatted: string[] = [];
  let rewritten = 0;

  for (const file of files) {
    const input = await readInput(file, host);
    if ("error" in input) {
      reportUnreadable(file, input.error);
      status = 2;
      continue;
    }
    const result = await withOhmOnDemand(() => format(input.text, input.name));
    if (counts(result.diagnostics).error > 0) {
      await printDiagnostics(result.diagnostics, host.source);
      status = Math.max(status, 1);
      // stdin: echo the input back so an editor piping through fmt loses nothing.
      if (file === "-" && !checkOnly) out(input.text);
      continue;
    }
    const changed = result.text !== input.text;
    if (file === "-") {
      if (checkOnly) {
        if (changed) {
          out("<stdin>\n");
          status = Math.max(status, 1);
        }
      } else out(result.text);
      continue;
    }
    if (!changed) continue;
    if (checkOnly) {
      unformatted.push(file);
      continue;
    }
    try {
      await writeFileAtomic(file, result.text);
      rewritten++;
    } catch (e) {
      failure(
        "E2003",
        `cannot write '${file}': ${describeFsError(e)}`,
        "check the file and its directory are writable; the original is left as it was",
      );
      status = 2;
    }
  }
  if (checkOnly && unformatted.length) {
    out(unformatted.map((f) => f + "\n").join(""));
    const n = unformatted.length;
    err(
      `${n} file${n === 1 ? "" : "s"} would be reformatted; run 'vmdesc fmt' on ${
        n === 1 ? "it" : "them"
      }\n`,
    );
    status = Math.max(status, 1);
  } else if (!checkOnly && rewritten > 0) {
    err(`formatted ${rewritten} file${rewritten === 1 ? "" : "s"}\n`);
  }
  return status;
}
