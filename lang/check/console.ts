/**
 * Console-like devices (serial ports, virtio consoles, on either transport): where their
 * output goes (`output`, the same for each kind) and which one of them receives the
 * machine's stdin (`input`).
 *
 * Stdin can feed one device only: bytes typed once cannot go to two guests' consoles. So
 * at most one device may say `input stdin` (E0230 on every further one). Without any, the
 * first serial port takes it (what every machine did before consoles had a choice), or, in
 * a machine without a serial port, the first virtio console: platform devices before PCI
 * functions, each in the order written. The Plan then says it for every console-like
 * device (`props.input` "stdin" or "none"), so the runtime applies no rule of its own.
 */
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error } from "../diagnostics/make.ts";
import type { LangHost } from "../program.ts";
import type { PropValue } from "../../plan/types.ts";
import type { ResolvedDevice, ResolvedPci } from "./model.ts";
import { rebaseOnMain } from "./paths.ts";
import type { PropValues } from "./values.ts";

/** `output` values that name a stream, not a file. */
const STREAMS = new Set(["stdout", "stderr", "null"]);

/** The kinds that have `output` and `input` (specs.ts consoleIoProps). */
export const CONSOLE_KINDS: ReadonlySet<string> = new Set(["serial", "virtio_console"]);

/**
 * Fills `props.output` (a file path re-expressed from the main file, like boot paths) and,
 * when written, `props.input`; returns where `input` was written, or null.
 */
export function resolveConsoleIo(
  v: PropValues,
  host: LangHost,
  mainFile: string,
  props: Record<string, PropValue>,
  diags: Diags,
): Span | null {
  const output = v.get("output");
  const o = (output?.value as string | undefined) ?? "stdout";
  if (output && o === "") {
    diags.push(
      error(
        "E0304",
        "`output` is empty",
        output.span,
        'say "stdout", "stderr", "null" or a file path',
      ),
    );
  }
  // A file path is relative to the file that declares the device, like boot paths;
  // "stdout", "stderr" and "null" are streams ("./stdout" is a file).
  props.output = STREAMS.has(o) || !output || o === ""
    ? o
    : rebaseOnMain(host, mainFile, output.origin ?? output.span.file, o);
  const input = v.get("input");
  if (!input) return null;
  props.input = input.value as string;
  return input.span;
}

/** A console-like device or function, with where its `input` was written. */
interface Console {
  props: Record<string, PropValue>;
  inputSpan?: Span;
  what: string;
}

/**
 * Decides which device receives stdin (see the module comment) and writes the answer into
 * every console-like device's props; E0230 for a second `input stdin`.
 */
export function assignStdin(
  devices: readonly ResolvedDevice[],
  pci: readonly ResolvedPci[],
  diags: Diags,
): void {
  const consoles: Console[] = [
    ...devices.filter((d) => d.kind === "serial").map((d) => con(d, `device \`${d.id}\``)),
    ...devices.filter((d) => d.kind === "virtio_console").map((d) => con(d, `device \`${d.id}\``)),
    ...pci.filter((f) => CONSOLE_KINDS.has(f.kind)).map((f) => con(f, `pci ${f.bdf}`)),
  ];
  const claims = consoles.filter((c) => c.props.input === "stdin");
  for (const c of claims.slice(1)) {
    const first = claims[0];
    diags.push(
      error(
        "E0230",
        `${c.what} and ${first.what} both take the machine's stdin`,
        c.inputSpan ?? null,
        "stdin feeds one device only: keep `input stdin` on the console you type into and say `input none` (or nothing) on the others",
        first.inputSpan ? [{ span: first.inputSpan, message: `${first.what} takes it here` }] : [],
      ),
    );
  }
  const owner = claims[0] ?? consoles.find((c) => c.props.input !== "none");
  for (const c of consoles) c.props.input = c === owner ? "stdin" : "none";
}

function con(d: ResolvedDevice | ResolvedPci, what: string): Console {
  return { props: d.props, inputSpan: d.inputSpan, what };
}
