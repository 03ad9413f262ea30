/**
 * How the benchmarks start vmdesc: exactly as `deno task vmdesc` does (the flags are read
 * from that task in deno.json), so a benchmark measures what a user runs and cannot drift
 * from it.
 */
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

let cached: string[] | null = null;

/** The `deno` arguments before `cli/vmdesc.ts`: ["run", "--v8-flags=…", "--allow-…", …]. */
export function vmdescDenoArgs(): string[] {
  return [...(cached ??= readTask())];
}

/** Read once: timed loops call vmdescArgv, and deno.json is not part of what they time. */
function readTask(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(ROOT + "deno.json"));
  const task: unknown = config.tasks?.vmdesc;
  const words = typeof task === "string" ? task.trim().split(/\s+/) : [];
  // Leading NAME=value words set the task's environment (VMDESC_INIT_CWD), not flags.
  while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) words.shift();
  if (words[0] !== "deno" || words[words.length - 1] !== "cli/vmdesc.ts") {
    throw new Error(`deno.json task "vmdesc" is not "deno … cli/vmdesc.ts": ${String(task)}`);
  }
  return words.slice(1, -1);
}

/** argv for `vmdesc ARGS…` run as the task runs it, with `deno` at `denoPath`. */
export function vmdescArgv(denoPath: string, args: string[]): string[] {
  return [denoPath, ...vmdescDenoArgs(), ROOT + "cli/vmdesc.ts", ...args];
}
