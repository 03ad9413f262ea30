/**
 * A small JSON-RPC 2.0 client with LSP's Content-Length framing, written for the tests and
 * the benchmark so they talk to the real server process exactly as an editor does, without
 * trusting the library the server itself uses.
 */

export interface Message {
  jsonrpc: "2.0";
  id?: number | string | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

interface Waiter {
  match: (m: Message) => boolean;
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Splits a byte stream into framed messages. Exported for its own unit test. */
export class FrameReader {
  #buf = new Uint8Array(0);

  push(chunk: Uint8Array): Message[] {
    const merged = new Uint8Array(this.#buf.length + chunk.length);
    merged.set(this.#buf);
    merged.set(chunk, this.#buf.length);
    this.#buf = merged;
    const out: Message[] = [];
    for (;;) {
      const headerEnd = indexOfCrlfCrlf(this.#buf);
      if (headerEnd < 0) break;
      const header = decoder.decode(this.#buf.subarray(0, headerEnd));
      const m = /^content-length:\s*(\d+)\s*$/im.exec(header);
      if (!m) throw new Error(`frame without Content-Length: ${JSON.stringify(header)}`);
      const len = Number(m[1]);
      const start = headerEnd + 4;
      if (this.#buf.length < start + len) break;
      const body = decoder.decode(this.#buf.subarray(start, start + len));
      this.#buf = this.#buf.slice(start + len);
      out.push(JSON.parse(body));
    }
    return out;
  }
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

export function frame(msg: Message): Uint8Array {
  const body = encoder.encode(JSON.stringify(msg));
  const head = encoder.encode(`Content-Length: ${body.length}\r\n\r\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

export interface StartOptions {
  cwd?: string;
  /** Called for every message the server sends (after internal handling). */
  onMessage?: (m: Message) => void;
}

export class LspClient {
  #proc: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #nextId = 1;
  #pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  #waiters: Waiter[] = [];
  /** Every notification received, in order (tests look back through it). */
  readonly notifications: Message[] = [];
  #stderr = "";
  #readLoop: Promise<void>;
  #stderrLoop: Promise<void>;
  #closed = false;
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(proc: Deno.ChildProcess, opts: StartOptions) {
    this.#proc = proc;
    this.status = proc.status;
    this.#writer = proc.stdin.getWriter();
    this.#readLoop = this.#read(opts.onMessage);
    this.#stderrLoop = (async () => {
      for await (const chunk of proc.stderr) this.#stderr += decoder.decode(chunk);
    })();
  }

  static start(cmd: string, args: string[], opts: StartOptions = {}): LspClient {
    const proc = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new LspClient(proc, opts);
  }

  get stderr(): string {
    return this.#stderr;
  }

  async #read(onMessage?: (m: Message) => void) {
    const reader = new FrameReader();
    try {
      for await (const chunk of this.#proc.stdout) {
        for (const m of reader.push(chunk)) {
          this.#dispatch(m);
          onMessage?.(m);
        }
      }
    } finally {
      this.#closed = true;
      const err = new Error(`server closed its output\n${this.#stderr}`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
    }
  }

  #dispatch(m: Message) {
    if (m.method !== undefined && m.id !== undefined && m.id !== null) {
      // A request from the server (registerCapability, workDoneProgress/create, ...):
      // answer like a minimal editor would.
      this.#send({ jsonrpc: "2.0", id: m.id, result: null }).catch(() => {});
      return;
    }
    if (m.method !== undefined) {
      this.notifications.push(m);
      for (const w of [...this.#waiters]) {
        if (w.match(m)) {
          clearTimeout(w.timer);
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
      return;
    }
    const p = this.#pending.get(m.id as number);
    if (p) {
      this.#pending.delete(m.id as number);
      p.resolve(m);
    }
  }

  async #send(m: Message) {
    await this.#writer.write(frame(m));
  }

  /** Sends a request and resolves with its result; rejects on an error response or timeout. */
  async request<T = unknown>(method: string, params: unknown, timeoutMs = 10_000): Promise<T> {
    const m = await this.requestRaw(method, params, timeoutMs);
    if (m.error) throw new Error(`${method}: ${m.error.code} ${m.error.message}`);
    return m.result as T;
  }

  requestRaw(method: string, params: unknown, timeoutMs = 10_000): Promise<Message> {
    if (this.#closed) return Promise.reject(new Error("server already closed"));
    const id = this.#nextId++;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer within ${timeoutMs} ms\n${this.#stderr}`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#send({ jsonrpc: "2.0", id, method, params }).catch((e) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(e);
      });
    });
  }

  notify(method: string, params: unknown): Promise<void> {
    return this.#send({ jsonrpc: "2.0", method, params });
  }

  /** The next notification (from now on) that satisfies `match`. */
  waitFor(match: (m: Message) => boolean, timeoutMs = 10_000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          reject(new Error(`no matching notification within ${timeoutMs} ms\n${this.#stderr}`));
        }, timeoutMs),
      };
      this.#waiters.push(w);
    });
  }

  /** Closes stdin and waits for the process; kills it if it has not exited in time. */
  async close(timeoutMs = 5_000): Promise<Deno.CommandStatus> {
    try {
      await this.#writer.close();
    } catch { /* already closed */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), timeoutMs);
    });
    const first = await Promise.race([this.status, killed]);
    if (first === "timeout") {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* gone */ }
    }
    clearTimeout(timer);
    const status = await this.status;
    await this.#readLoop.catch(() => {});
    await this.#stderrLoop.catch(() => {});
    for (const w of this.#waiters.splice(0)) clearTimeout(w.timer);
    return status;
  }

  /** Kills the server at once (failure paths). */
  async kill(): Promise<void> {
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* gone */ }
    await this.close(1_000).catch(() => {});
  }
}
