/** Command-line inputs: a .vmdesc path, or '-' for standard input. */
import type { DenoHost } from "./host.ts";
import { describeFsError, failure } from "./output.ts";

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

/** The E2002 report for an input readInput could not read. */
export function reportUnreadable(file: string, why: string): void {
  failure("E2002", `cannot read '${file}': ${why}`, "check the path and its permissions");
}
