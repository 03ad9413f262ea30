/**
 * The progress line of `vmdesc boot` on a terminal:
 *
 *     booting… 12.3 s  last: [    0.388100] last_pfn = 0xc0000 max_arch_pfn = 0x400000000
 *
 * A kernel on a slow (emulated) KVM can be silent for a minute (the bzImage decompressor
 * prints nothing), so a line on stderr keeps the elapsed time and the guest's last serial
 * line in view, redrawn in place and cleared when the guest ends.
 *
 * Only when stderr is a terminal (and TERM is not "dumb"); piped, nothing is drawn and no
 * control codes are written. When the guest's output shares the terminal (stdout is a
 * terminal too), the line is cleared before each piece of output and drawn again only
 * after a moment of silence at the start of a line, so it never lands inside the guest's
 * text. It stops for good once the user types (an interactive guest needs no progress).
 */

export interface ProgressOptions {
  /** Writes to the terminal (stderr). */
  write(text: string): void;
  /** Width of the terminal in columns. */
  columns(): number;
  /** Monotonic milliseconds. */
  now(): number;
  /** The guest's output goes to the same terminal (stdout is a terminal). */
  sharesScreen: boolean;
  /** Redraw period (default 100 ms). */
  intervalMs?: number;
  /** With a shared screen: silence needed before drawing (default 400 ms). */
  idleMs?: number;
}

const CLEAR = "\r\x1b[K";
// ANSI escape sequences and other control characters the guest may print.
// deno-lint-ignore no-control-regex
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/** A guest line as it should appear in the progress line: printable, trimmed. */
export function cleanLine(s: string): string {
  return s.replace(CONTROL, "").replace(/\s+/g, " ").trim();
}

export class ProgressLine {
  readonly #o: Required<ProgressOptions>;
  readonly #start: number;
  #last = "";
  #partial = "";
  #drawn = false;
  #atLineStart = true;
  #lastOutputAt: number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #stopped = false;
  readonly #dec = new TextDecoder();

  constructor(opts: ProgressOptions) {
    this.#o = { intervalMs: 100, idleMs: 400, ...opts };
    this.#start = opts.now();
    this.#lastOutputAt = this.#start;
  }

  /** Starts redrawing on a timer that does not keep the process alive. */
  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    const timer = setInterval(() => this.tick(), this.#o.intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
    this.tick();
  }

  /** The text of the line (without control codes), fitted to the terminal width. */
  render(): string {
    const secs = ((this.#o.now() - this.#start) / 1000).toFixed(1);
    const last = this.#last || cleanLine(this.#partial);
    const text = `booting… ${secs} s  last: ${last || "(no output yet)"}`;
    const width = Math.max(this.#o.columns() - 1, 10);
    return [...text].length > width ? [...text].slice(0, width - 1).join("") + "…" : text;
  }

  /** Draws the line if the screen allows it now. */
  tick(): void {
    if (this.#stopped) return;
    if (this.#o.sharesScreen) {
      if (!this.#atLineStart) return;
      if (this.#o.now() - this.#lastOutputAt < this.#o.idleMs) return;
    }
    this.#o.write(CLEAR + this.render());
    this.#drawn = true;
  }

  /** Call with each piece of guest output, before it is written to stdout. */
  output(bytes: Uint8Array): void {
    if (this.#stopped) return;
    if (this.#drawn && this.#o.sharesScreen) {
      this.#o.write(CLEAR);
      this.#drawn = false;
    }
    this.#lastOutputAt = this.#o.now();
    if (bytes.length > 0) this.#atLineStart = bytes[bytes.length - 1] === 0x0a;
    const text = this.#partial + this.#dec.decode(bytes, { stream: true });
    const lines = text.split(/\r?\n|\r(?!\n)/);
    this.#partial = lines.pop() ?? "";
    for (let i = lines.length - 1; i >= 0; i--) {
      const l = cleanLine(lines[i]);
      if (l) {
        this.#last = l;
        break;
      }
    }
    // A very long line without a newline still shows something.
    if (this.#partial.length > 4096) this.#partial = this.#partial.slice(-1024);
  }

  /** Clears the line for a message of vmdesc's own; the next tick draws it again. */
  clear(): void {
    if (this.#drawn) this.#o.write(CLEAR);
    this.#drawn = false;
  }

  /** Clears the line and stops for good (idempotent). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#drawn) this.#o.write(CLEAR);
    this.#drawn = false;
  }

  get stopped(): boolean {
    return this.#stopped;
  }
}

/** A progress line on stderr when it is a terminal, else null (plain output). */
export function progressForTerminal(): ProgressLine | null {
  if (!Deno.stderr.isTerminal()) return null;
  if ((Deno.env.get("TERM") ?? "") === "dumb") return null;
  const enc = new TextEncoder();
  return new ProgressLine({
    write(text) {
      try {
        Deno.stderr.writeSync(enc.encode(text));
      } catch {
        // the terminal went away: nothing to show
      }
    },
    columns() {
      // A pseudo-terminal without a window size reports 0 columns.
      try {
        const c = Deno.consoleSize().columns;
        return c >= 20 ? c : 80;
      } catch {
        return 80;
      }
    },
    now: () => performance.now(),
    sharesScreen: Deno.stdout.isTerminal(),
  });
}
