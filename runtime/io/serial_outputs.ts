/**
 * Where each console's transmitted bytes go: the Plan's `props.output` of every serial
 * port and virtio console (consoles.ts), "stdout" (the default), "stderr", "null" or a
 * file path. A relative
 * path is resolved against the same directory as the boot payload's path (the Plan's
 * source directory, or the caller's `baseDir`), so `output "serial.log"` lands beside the
 * .vmdesc that says it.
 *
 * Files are opened once, all before the machine is built (a path that cannot be opened is
 * E1017 before any VM exists), truncated, and written through (each chunk of guest output
 * goes straight to the file with no buffer of ours, so a crash or kill loses nothing the
 * guest sent). `close()` closes them; `abandon()` (the boot never started) also removes
 * the files this call created, so a failed boot leaves nothing behind.
 */
import type { Plan } from "../../plan/types.ts";
import { RuntimeError } from "../errors.ts";
import { joinPath } from "../boot/mod.ts";
import { consoleEntries } from "./consoles.ts";

export type Sink = (bytes: Uint8Array) => void;

export interface StdSinks {
  stdout: Sink;
  stderr: Sink;
}

export interface SerialOutputs {
  /** The machine's `output` callback: routes by device id (unknown ids go to stdout). */
  write(deviceId: string, bytes: Uint8Array): void;
  /** Where each serial device's output goes: "stdout", "stderr", "null" or an absolute path. */
  readonly targets: ReadonlyMap<string, string>;
  /** Closes the files; idempotent. */
  close(): void;
  /** Closes the files and removes those this call created (the boot did not start). */
  abandon(): void;
}

const STREAMS = new Set(["stdout", "stderr", "null"]);

/** A sink writing to a process stream; a closed pipe (`| head`) just ends the output. */
export function streamSink(stream: { writeSync(p: Uint8Array): number }): Sink {
  let gone = false;
  return (bytes) => {
    if (gone) return;
    try {
      let off = 0;
      while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
    } catch (e) {
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      gone = true;
    }
  };
}

function writeAll(f: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
}

/**
 * Opens every serial device's output. Throws RuntimeError E1017 (with every file opened so
 * far closed, and those it created removed) when a file cannot be opened for writing.
 * `warn` hears of a write that fails later (disk full); that device's output is then dropped.
 */
export function openSerialOutputs(
  plan: Plan,
  baseDir: string,
  std: StdSinks,
  warn: (message: string) => void = () => {},
): SerialOutputs {
  const targets = new Map<string, string>();
  const sinks = new Map<string, Sink>();
  const files: Deno.FsFile[] = [];
  const created: string[] = [];
  const byPath = new Map<string, Sink>();
  let closed = false;
  const closeFiles = () => {
    if (closed) return;
    closed = true;
    for (const f of files) {
      try {
        f.close();
      } catch { /* already closed */ }
    }
  };
  const removeCreated = () => {
    for (const p of created) {
      try {
        Deno.removeSync(p);
      } catch { /* gone already */ }
    }
  };
  try {
    for (const d of consoleEntries(plan)) {
      const raw = d.props.output;
      const out = typeof raw === "string" && raw !== "" ? raw : "stdout";
      if (STREAMS.has(out)) {
        targets.set(d.id, out);
        sinks.set(d.id, out === "stdout" ? std.stdout : out === "stderr" ? std.stderr : () => {});
        continue;
      }
      const abs = joinPath(baseDir, out);
      targets.set(d.id, abs);
      // Two UARTs naming one file share one descriptor (and one truncation).
      const shared = byPath.get(abs);
      if (shared) {
        sinks.set(d.id, shared);
        continue;
      }
      let existed = true;
      try {
        Deno.lstatSync(abs);
      } catch {
        existed = false;
      }
      let f: Deno.FsFile;
      try {
        f = Deno.openSync(abs, { write: true, create: true, truncate: true });
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound
          ? "its directory does not exist"
          : e instanceof Deno.errors.PermissionDenied
          ? "permission denied"
          : e instanceof Deno.errors.IsADirectory
          ? "it is a directory"
          : (e as Error).message;
        throw new RuntimeError(
          "E1017",
          `${d.kind} ${d.id}: cannot open its output file ${abs}: ${why}`,
          `relative paths are resolved from ${baseDir}; create the directory, fix the path, or use output "stdout", "stderr" or "null"`,
        );
      }
      files.push(f);
      if (!existed) created.push(abs);
      let broken = false;
      const sink: Sink = (bytes) => {
        if (broken || closed) return;
        try {
          writeAll(f, bytes);
        } catch (e) {
          broken = true;
          warn(
            `${d.kind} ${d.id}: writing ${abs} failed (${
              (e as Error).message
            }); its output is dropped`,
          );
        }
      };
      byPath.set(abs, sink);
      sinks.set(d.id, sink);
    }
  } catch (e) {
    closeFiles();
    removeCreated();
    throw e;
  }
  return {
    targets,
    write(deviceId, bytes) {
      (sinks.get(deviceId) ?? std.stdout)(bytes);
    },
    close: closeFiles,
    abandon() {
      closeFiles();
      removeCreated();
      created.length = 0;
    },
  };
}
