/**
 * Printing helpers shared by the commands: colors only on a terminal without NO_COLOR or
 * --no-color, whole writes (a short write is retried), a closed pipe is not a crash, and
 * files are written atomically and durably (temp file in the same directory, fsync,
 * rename, fsync of the directory).
 */
import { type FlagSpecs, formatFlag, parseArgs, type Parsed, UsageError } from "./args.ts";
import type { Code } from "../plan/codes.ts";
import type { Diagnostic } from "../lang/diagnostics/types.ts";
import { dirname } from "../plan/paths.ts";
import { describeFsError } from "../host/fs_errors.ts";

const encoder = new TextEncoder();

type Stream = typeof Deno.stdout | typeof Deno.stderr;

let colorRefused = false;

/** `--no-color` (the dispatcher takes it from any command line): never color from now on. */
export function refuseColor(): void {
  colorRefused = true;
}

/**
 * Colors only on a terminal, and never with `--no-color` or `NO_COLOR` (no-color.org:
 * set and not empty). `Deno.noColor` reads NO_COLOR without needing --allow-env.
 */
export function useColor(stream: Stream = Deno.stdout): boolean {
  if (colorRefused || Deno.noColor) return false;
  return stream.isTerminal();
}

export function writeAll(stream: Stream, text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  try {
    while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
  } catch (e) {
    // `vmdesc plan x | head`: the reader went away; nothing more to say.
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}

export const out = (text: string) => writeAll(Deno.stdout, text);
export const err = (text: string) => writeAll(Deno.stderr, text);

/**
 * Diagnostics rustc-style, then the summary line, on `stream`. The renderer (with its
 * Unicode width tables) is loaded here, on first use, so a run with nothing to show
 * never loads it.
 */
export async function printDiagnostics(
  diags: Diagnostic[],
  sources: (file: string) => string | undefined,
  stream: Stream = Deno.stderr,
): Promise<void> {
  const { renderDiagnostics, renderSummary, withWidthsOnDemand } = await import(
    "../lang/diagnostics/render.ts"
  );
  const color = useColor(stream);
  const text = await withWidthsOnDemand(() => renderDiagnostics(diags, sources, { color }));
  writeAll(stream, text + "\n");
  writeAll(stream, renderSummary(diags, { color }));
}

/** A usage error in the diagnostics' style, on stderr. Returns exit status 2. */
export function usageError(
  e: UsageError | { message: string; hint?: string | null } | string,
  command?: string,
): number {
  const color = useColor(Deno.stderr);
  const red = (s: string) => color ? `\x1b[1;31m${s}\x1b[0m` : s;
  const bold = (s: string) => color ? `\x1b[1m${s}\x1b[0m` : s;
  const message = typeof e === "string" ? e : e.message;
  const hint = typeof e === "string" ? null : e.hint ?? null;
  let text = `${red("error[E2001]")}${bold(`: ${message}`)}\n`;
  if (hint) text += `  = help: ${hint}\n`;
  text += `  = note: run 'vmdesc ${command ? command + " " : ""}--help' for usage\n`;
  err(text);
  return 2;
}

/**
 * How every command starts: its flags parsed (a usage error is printed: exit status 2) and
 * `--help` answered (printed: exit status 0). Returns the parsed arguments, or the exit
 * status when the command is already done.
 */
export function startCommand(
  command: string,
  args: string[],
  specs: FlagSpecs,
  help: string,
): Parsed | number {
  let parsed: Parsed;
  try {
    parsed = parseArgs(args, specs);
  } catch (e) {
    if (e instanceof UsageError) return usageError(e, command);
    throw e;
  }
  if (parsed.flags.help) {
    out(help);
    return 0;
  }
  return parsed;
}

/**
 * The command's `--format` (see `formatFlag`: the first of `names` by default), or exit
 * status 2 after printing the usage error for a format it does not have.
 */
export function chosenFormat(
  command: string,
  parsed: Parsed,
  names: readonly string[],
  aliases: Record<string, string> = {},
): string | number {
  try {
    return formatFlag(parsed.flags.format, names, aliases);
  } catch (e) {
    if (e instanceof UsageError) return usageError(e, command);
    throw e;
  }
}

/**
 * `startCommand` for a command whose one flag is `--format text|json` (explain, ctl, ps):
 * the parsed arguments and whether JSON was asked for, or the exit status.
 */
export function startTextOrJson(
  command: string,
  args: string[],
  help: string,
  flags: FlagSpecs = {},
): { parsed: Parsed; json: boolean } | number {
  const parsed = startCommand(command, args, { ...flags, format: { type: "string" } }, help);
  if (typeof parsed === "number") return parsed;
  const format = chosenFormat(command, parsed, ["text", "json"]);
  return typeof format === "number" ? format : { parsed, json: format === "json" };
}

/**
 * Any non-usage failure of the CLI itself, in the diagnostics' style with its stable code:
 * E2002 an input it cannot read, E2003 an output it cannot write, E0105/E0404 a missing
 * machine. `vmdesc explain CODE` tells more.
 */
export function failure(code: Code, message: string, hint: string | null = null): void {
  const color = useColor(Deno.stderr);
  const red = (s: string) => color ? `\x1b[1;31m${s}\x1b[0m` : s;
  const bold = (s: string) => color ? `\x1b[1m${s}\x1b[0m` : s;
  err(`${red(`error[${code}]`)}${bold(`: ${message}`)}\n${hint ? `  = help: ${hint}\n` : ""}`);
}

/**
 * An output file the user named, written with `writeFileAtomic`; when it cannot be, E2003
 * is printed with `hint`. Returns whether the file was written.
 */
export async function writeOutput(path: string, data: string, hint: string): Promise<boolean> {
  try {
    await writeFileAtomic(path, data);
    return true;
  } catch (e) {
    failure("E2003", `cannot write '${path}': ${describeFsError(e)}`, hint);
    return false;
  }
}

/**
 * Writes `path` so that readers see the old content or the new one, never half of it,
 * even after a crash or a power cut: a temp file beside it, written and fsynced, renamed
 * over the target, then the directory fsynced so the rename itself is on disk (what
 * git, SQLite and rustc's incremental cache do). Keeps the file mode of an existing file.
 * A symbolic link is followed (the file it points to is replaced, the link stays), and a
 * path that is not a regular file (a FIFO, /dev/stdout, /dev/null) is written in place:
 * renaming over it would replace the node itself.
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  let target = path;
  let mode: number | undefined;
  try {
    const info = await Deno.stat(path); // follows links
    if (!info.isFile) {
      await Deno.writeTextFile(path, data);
      return;
    }
    mode = info.mode ?? undefined;
    if ((await Deno.lstat(path)).isSymlink) target = await Deno.realPath(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    // A dangling link: create the file it names (through the link) rather than replace it.
    const link = await Deno.lstat(path).catch(() => null);
    if (link?.isSymlink) {
      await Deno.writeTextFile(path, data);
      return;
    }
  }
  const dir = dirname(target) || ".";
  const base = target.slice(target.lastIndexOf("/") + 1);
  const tmp = `${dir}/.${base}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const file = await Deno.open(tmp, {
      write: true,
      createNew: true,
      ...(mode !== undefined ? { mode: mode & 0o7777 } : {}),
    });
    try {
      const bytes = encoder.encode(data);
      for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
      await file.sync();
    } finally {
      file.close();
    }
    if (mode !== undefined) await Deno.chmod(tmp, mode & 0o7777); // the umask may have cut it
    await Deno.rename(tmp, target);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDirectory(dir);
}

/** fsync of a directory, so a rename in it survives a crash; best effort (the data is safe). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory (EINVAL); the file itself is synced.
  } finally {
    handle?.close();
  }
}

// Also the library's (mod.ts compileFile), so it lives below both, in host/.
export { describeFsError } from "../host/fs_errors.ts";
