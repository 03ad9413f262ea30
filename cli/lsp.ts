/**
 * `vmdesc lsp`: the language server on stdio. Everything LSP-specific lives in `lsp/`;
 * this module only parses flags and starts it (imported lazily so other commands never
 * load vscode-languageserver).
 */
import { parseArgs, UsageError } from "./args.ts";
import { usageError } from "./output.ts";

export const HELP = `vmdesc lsp — the vmdesc language server (Language Server Protocol on stdio)

Usage:
  vmdesc lsp [--stdio] [--full-reparse] [--debounce MS]

Editors start it themselves; see editors/vscode and editors/nvim.

Flags:
  --stdio          talk JSON-RPC over stdin/stdout (the default and only transport)
  --full-reparse   parse every change from scratch instead of incrementally
                   (for comparison benchmarks; results are identical)
  --debounce MS    wait this long after a change before re-checking (default 15)
  -h, --help       show this help
`;

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(args, {
      stdio: { type: "boolean" },
      "full-reparse": { type: "boolean" },
      debounce: { type: "string" },
    });
  } catch (e) {
    if (e instanceof UsageError) return usageError(e, "lsp");
    throw e;
  }
  if (parsed.flags.help) {
    console.log(HELP);
    return 0;
  }
  if (parsed.positionals.length > 0) {
    return usageError(
      { message: `unexpected argument '${parsed.positionals[0]}'`, hint: "vmdesc lsp [--stdio]" },
      "lsp",
    );
  }
  let debounceMs = 15;
  if (typeof parsed.flags.debounce === "string") {
    debounceMs = Number(parsed.flags.debounce);
    if (!Number.isInteger(debounceMs) || debounceMs < 0 || debounceMs > 10_000) {
      return usageError({
        message: `--debounce takes a whole number of milliseconds, not '${parsed.flags.debounce}'`,
        hint: "a value from 0 to 10000, e.g. --debounce 15",
      }, "lsp");
    }
  }
  const { startServer } = await import("../lsp/mod.ts");
  return await startServer({
    incremental: !parsed.flags["full-reparse"],
    debounceMs,
  });
}

if (import.meta.main) Deno.exit(await run(Deno.args));
