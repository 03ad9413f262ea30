/**
 * What the control API's tests share: `vmdesc boot --api-sock` as a real process (started
 * exactly as `deno task vmdesc` does), curl as the client (`curl --unix-socket`, every
 * answer held to the OpenAPI document), and the ticker guest's lines.
 */
import { equal } from "node:assert/strict";
import { vmdescArgv } from "../../bench/vmdesc_command.ts";
import { checkAnswer } from "./openapi.ts";

export const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
export const TICKER = `${ROOT}examples/guests/ticker.vmdesc`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One line of the ticker guest, parsed. */
export interface Tick {
  n: number;
  /** kvmclock (ns) and TSC when the line was due. */
  clock: bigint;
  tsc: bigint;
  spins: number;
  /** performance.now() when the line reached the host. */
  wall: number;
}

const TICK = /^tick (\d+) clock ([0-9a-f]{16}) tsc ([0-9a-f]{16}) spins (\d+)$/;

export function parseTick(line: string, wall: number): Tick | null {
  const m = TICK.exec(line);
  if (!m) return null;
  return {
    n: Number(m[1]),
    clock: BigInt("0x" + m[2]),
    tsc: BigInt("0x" + m[3]),
    spins: Number(m[4]),
    wall,
  };
}

/** Collects a stream's lines as they arrive (with their arrival time). */
export class Lines {
  readonly lines: { text: string; wall: number }[] = [];
  #rest = "";
  readonly done: Promise<void>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const wall = performance.now();
        const parts = (this.#rest + chunk).split("\n");
        this.#rest = parts.pop()!;
        for (const text of parts) this.lines.push({ text, wall });
      }
      if (this.#rest) this.lines.push({ text: this.#rest, wall: performance.now() });
    })();
  }
  get text(): string {
    return this.lines.map((l) => l.text).join("\n");
  }
  ticks(): Tick[] {
    return this.lines.map((l) => parseTick(l.text, l.wall)).filter((t) => t !== null);
  }
}

/** A `vmdesc boot` process serving its control API. */
export interface Booted {
  child: Deno.ChildProcess;
  socket: string;
  stdout: Lines;
  stderr: Lines;
  /** Resolves with the exit status once the process has ended and its output is read. */
  status: Promise<number>;
}

/**
 * Starts `vmdesc boot ARGS --api-sock SOCKET` and waits (up to 20 s) until the socket
 * answers. `env` adds to the environment (XDG_RUNTIME_DIR for bare names).
 */
export async function bootWithApi(
  args: string[],
  socket: string,
  opts: { env?: Record<string, string>; socketPath?: string } = {},
): Promise<Booted> {
  const [cmd, ...rest] = vmdescArgv(Deno.execPath(), ["boot", ...args, "--api-sock", socket]);
  const child = new Deno.Command(cmd, {
    args: rest,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).spawn();
  const stdout = new Lines(child.stdout);
  const stderr = new Lines(child.stderr);
  const status = (async () => {
    const s = await child.status;
    await Promise.all([stdout.done, stderr.done]);
    return s.code;
  })();
  const path = opts.socketPath ?? socket;
  // Generous: in the single-threaded test bed, with other machines running, a start takes
  // seconds (20 s was seen to be too short there).
  const deadline = performance.now() + 60_000;
  let ended = false;
  status.then(() => ended = true);
  for (;;) {
    if (ended) {
      throw new Error(`vmdesc boot ended before serving: ${await status}\n${stderr.text}`);
    }
    try {
      const conn = await Deno.connect({ transport: "unix", path });
      conn.close();
      break;
    } catch {
      if (performance.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`no control API at ${path} after 60 s\n${stderr.text}`);
      }
      await sleep(20);
    }
  }
  return { child, socket: path, stdout, stderr, status };
}

/**
 * The ticker guest (`--machine MACHINE`) under `vmdesc boot --api-sock`, in a fresh
 * directory, handed to `fn`; then stopped through the API, which must answer 200 and end
 * the process with status 0. Whatever happens, the process is killed and the directory
 * removed.
 */
export async function withTicker(
  machine: string,
  fn: (m: Booted, socket: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-ticker-" });
  const socket = `${dir}/api.sock`;
  const m = await bootWithApi([TICKER, "--machine", machine], socket);
  try {
    await fn(m, socket);
    equal((await curl(socket, "POST", "/v1/actions", { body: '{"action":"stop"}' })).status, 200);
    equal(await m.status, 0);
  } finally {
    try {
      m.child.kill("SIGKILL");
    } catch { /* ended */ }
    await m.status;
    await Deno.remove(dir, { recursive: true });
  }
}

export interface CurlAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The body as JSON (null when it is not). */
  json: unknown;
}

const decoder = new TextDecoder();

/**
 * One request with curl over the Unix socket; the answer is checked against the OpenAPI
 * document (`check: false` skips that, for answers that are not the API's, like a
 * malformed request the HTTP parser refuses itself). `args` adds curl arguments.
 */
export async function curl(
  socket: string,
  method: string,
  path: string,
  opts: { body?: string; args?: string[]; check?: boolean; timeoutS?: number } = {},
): Promise<CurlAnswer> {
  const args = [
    "-sS",
    "-i",
    "--max-time",
    String(opts.timeoutS ?? 30),
    "--unix-socket",
    socket,
    "-X",
    method,
    ...(opts.body !== undefined
      ? ["-H", "content-type: application/json", "--data-binary", opts.body]
      : []),
    ...(opts.args ?? []),
    `http://localhost${path}`,
  ];
  const out = await new Deno.Command("curl", { args, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) {
    throw new Error(`curl ${args.join(" ")} failed (${out.code}): ${decoder.decode(out.stderr)}`);
  }
  const raw = decoder.decode(out.stdout);
  // Skip interim answers (100 Continue) to the final head.
  let rest = raw;
  let head = "";
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    head = rest.slice(0, end);
    rest = rest.slice(end + 4);
    if (!/^HTTP\/1\.1 1\d\d/.test(head)) break;
  }
  const [statusLine, ...headerLines] = head.split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of headerLines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  let json: unknown = null;
  try {
    json = JSON.parse(rest);
  } catch {
    // not JSON (a stream, or not the API's)
  }
  if (opts.check !== false) {
    checkAnswer({
      method,
      path: path.split("?")[0],
      status,
      contentType: headers["content-type"] ?? null,
      text: rest,
    });
  }
  return { status, headers, text: rest, json };
}

/**
 * Follows GET /v1/events with `curl -N` until the stream ends (or `stop()`); the lines
 * are checked against the document when the stream has ended.
 */
export function followEvents(socket: string, sse = false) {
  const child = new Deno.Command("curl", {
    args: [
      "-sSN",
      "--unix-socket",
      socket,
      ...(sse ? ["-H", "accept: text/event-stream"] : []),
      "-w",
      "\n%{http_code} %{content_type}\n",
      "http://localhost/v1/events",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = new Lines(child.stdout);
  const ended = (async () => {
    await child.status;
    await lines.done;
    await child.stderr.cancel().catch(() => {});
    const all = lines.lines.map((l) => l.text);
    while (all.length && all[all.length - 1] === "") all.pop();
    // curl's write-out (status, type) closes a stream that ended; a stopped one has none.
    const last = /^(\d{3}) (\S+)$/.exec(all[all.length - 1] ?? "");
    if (last) all.pop();
    const code = last ? Number(last[1]) : 0;
    const text = all.join("\n") + "\n";
    if (last) {
      checkAnswer({ method: "GET", path: "/v1/events", status: code, contentType: last[2], text });
    }
    const events = sse
      ? all.filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)))
      : all.filter((l) => l.trim()).map((l) => JSON.parse(l));
    return { status: code, events: events as Record<string, unknown>[], text };
  })();
  return {
    /** Events received so far (NDJSON lines that parse). */
    soFar(): Record<string, unknown>[] {
      return lines.lines.flatMap((l) => {
        const t = sse ? (l.text.startsWith("data: ") ? l.text.slice(6) : "") : l.text;
        try {
          return t ? [JSON.parse(t)] : [];
        } catch {
          return [];
        }
      });
    },
    ended,
    stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already ended
      }
    },
  };
}

/** Waits (up to `ms`) until `cond()` holds. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Threads and open fds of process `pid` now. */
export function processResources(pid: number): { threads: number; fds: number } {
  return {
    threads: [...Deno.readDirSync(`/proc/${pid}/task`)].length,
    fds: [...Deno.readDirSync(`/proc/${pid}/fd`)].length,
  };
}

/**
 * The fd count of process `pid` once it is down to `target` (the server closes a connection
 * it has answered a moment after curl has read the answer), or what it is after `ms`.
 */
export async function settledFds(pid: number, target: number, ms = 5000): Promise<number> {
  const end = performance.now() + ms;
  for (;;) {
    const fds = processResources(pid).fds;
    if (fds <= target || performance.now() > end) return fds;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
