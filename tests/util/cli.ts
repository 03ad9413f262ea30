/**
 * The real `vmdesc` command line in a subprocess, for the tests that hold its output, exit
 * statuses and files to what users see: `deno run cli/vmdesc.ts` directly, or a `deno
 * task` typed in a directory as a user types it.
 */
export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The command line's entry point. */
export const CLI = `${ROOT}/cli/vmdesc.ts`;

/** What a run printed and how it ended. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Standard input (none: /dev/null). */
  stdin?: string;
  /** The working directory (the repository by default). */
  cwd?: string;
  /** Added to the environment, which has NO_COLOR="" (color off, as in a pipe). */
  env?: Record<string, string>;
}

/** `vmdesc ARGS` with the permissions the commands that print need (no KVM). */
export function vmdesc(args: string[], opts: RunOptions = {}): Promise<Run> {
  return run(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", CLI, ...args],
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "", ...opts.env },
  }, opts.stdin);
}

/**
 * `deno task TASK ARGS` typed in `cwd`, as a user would (not inside our own task: the
 * runner's `deno task test` set INIT_CWD, which a user's shell does not have).
 */
export function denoTask(task: string, args: string[], cwd: string): Promise<Run> {
  return run("env", {
    args: ["-u", "INIT_CWD", "-u", "VMDESC_INIT_CWD", Deno.execPath(), "task", "-q", task, ...args],
    cwd,
  });
}

/** `cmd` with `options`, `stdin` (if any) written to it, run to its end. */
export async function run(
  cmd: string,
  options: Deno.CommandOptions,
  stdin?: string,
): Promise<Run> {
  const child = new Deno.Command(cmd, {
    ...options,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** An assertion whose failure shows the whole run (exit status, stdout, stderr). */
export function assertRun(cond: unknown, msg: string, r?: Run): asserts cond {
  if (!cond) {
    throw new Error(
      r ? `${msg}\n[exit ${r.code}]\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}` : msg,
    );
  }
}
