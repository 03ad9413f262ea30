/**
 * Command-line inputs: where relative paths start, reading a .vmdesc path or '-' (stdin),
 * and the E2002 report for one that cannot be read.
 */
import type { DenoHost } from "./host.ts";
import { describeFsError, failure } from "./output.ts";
import type { Diagnostic } from "../lang/diagnostics/types.ts";

/**
 * The directory the user typed the command in. `deno task vmdesc …` runs in the project
 * root, not where it was typed; `deno task` says where that was in `INIT_CWD` (as npm
 * does), and the `vmdesc` task hands it on as `VMDESC_INIT_CWD`. Only that variable
 * counts, not `INIT_CWD` itself: a test, an npm script or a shell started by some other
 * task inherits an `INIT_CWD` that is about someone else's command line.
 */
export function invocationDirectory(): string {
  const cwd = Deno.cwd();
  let typedIn: string | undefined;
  try {
    typedIn = Deno.env.get("VMDESC_INIT_CWD");
  } catch {
    return cwd; // no --allow-env: the current directory is all we know
  }
  if (!typedIn || !typedIn.startsWith("/") || typedIn === cwd) return cwd;
  try {
    return Deno.statSync(typedIn).isDirectory ? typedIn : cwd;
  } catch {
    return cwd;
  }
}

/**
 * Makes relative command-line paths start where the user typed the command, for every
 * command at once (inputs, `--svg`, `--kernel`, `--plan`, `--stats-json`, folders to
 * walk). The CLI's entry point calls it once, before any command runs.
 */
export function enterInvocationDirectory(): void {
  const dir = invocationDirectory();
  if (dir !== Deno.cwd()) Deno.chdir(dir);
  // Not for the processes vmdesc starts: their own command lines start where they run.
  try {
    Deno.env.delete("VMDESC_INIT_CWD");
  } catch { /* no --allow-env */ }
}

/** Reads a command-line input: a path, or '-' for standard input (registered with the host). */
export async function readInput(
  file: string,
  host: DenoHost,
): Promise<{ name: string; text: string } | { error: string }> {
  if (file === "-") {
    // Stdin can be read once: a second '-' gets the same text.
    // Decoded keeping a byte order mark, as Deno.readTextFile does for files (fmt keeps it).
    const text = host.files.get("<stdin>") ??
      new TextDecoder("utf-8", { ignoreBOM: true }).decode(
        await new Response(Deno.stdin.readable).arrayBuffer(),
      );
    host.files.set("<stdin>", text);
    return { name: "<stdin>", text };
  }
  try {
    const text = await Deno.readTextFile(file);
    host.files.set(file, text);
    return { name: file, text };
  } catch (e) {
    return { error: describeFsError(e) };
  }
}

/** What to do about an unreadable input; a relative path says where it was looked for. */
function unreadableHint(file: string): string {
  if (file === "-" || file.startsWith("/")) return "check the path and its permissions";
  let cwd: string;
  try {
    cwd = Deno.cwd();
  } catch {
    return "check the path and its permissions";
  }
  return `looked for ${cwd}/${file.replace(/^\.\//, "")} (relative to ${cwd}, where vmdesc ` +
    "was run); check the path and its permissions";
}

/** The E2002 report for an input readInput could not read. */
export function reportUnreadable(file: string, why: string): void {
  failure("E2002", `cannot read '${file}': ${why}`, unreadableHint(file));
}

/** The same report as a diagnostic (no span), for `check --format json`. */
export function unreadableDiagnostic(file: string, why: string): Diagnostic {
  return {
    code: "E2002",
    severity: "error",
    message: `cannot read '${file}': ${why}`,
    span: null,
    labels: [],
    hint: unreadableHint(file),
  };
}
