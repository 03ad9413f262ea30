/**
 * How the benchmarks start vmdesc: exactly as `deno task vmdesc` does (the flags are read
 * from that task in deno.json), so a benchmark measures what a user runs and cannot drift
 * from it.
 */
import { taskFlags } from "../bin/install.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

let cached: string[] | null = null;

/** The `deno` arguments before `cli/vmdesc.ts`: ["run", "--v8-flags=…", "--allow-…", …]. */
export function vmdescDenoArgs(): string[] {
  return [...(cached ??= readTask())];
}

/** Read once: timed loops call vmdescArgv, and deno.json is not part of what they time. */
function readTask(): string[] {
  return ["run", ...taskFlags(Deno.readTextFileSync(ROOT + "deno.json"))];
}

/** argv for `vmdesc ARGS…` run as the task runs it, with `deno` at `denoPath`. */
export function vmdescArgv(denoPath: string, args: string[]): string[] {
  return [denoPath, ...vmdescDenoArgs(), ROOT + "cli/vmdesc.ts", ...args];
}
