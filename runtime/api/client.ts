/**
 * A client of the control API (api/server.ts) on a Unix socket: what `vmdesc ctl` and
 * `vmdesc ps` use, and what scripts can use. Node's HTTP client (node:http, built into
 * Deno) speaks to the socket: Deno's fetch with a Unix-socket HttpClient failed most
 * requests when a hundred ran at once (ENOENT, ECONNREFUSED), node:http answered all.
 */
import http from "node:http";

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body parsed as JSON (null when it is not JSON). */
  body: unknown;
  text: string;
}

/** The socket could not be reached: nothing there (ENOENT), or nothing answers (stale). */
export class ApiUnreachable extends Error {
  constructor(readonly socket: string, readonly reason: string) {
    super(`cannot reach ${socket}: ${reason}`);
    this.name = "ApiUnreachable";
  }
}

function unreachable(socket: string, e: NodeJS.ErrnoException): Error {
  if (e.code === "ENOENT") return new ApiUnreachable(socket, "no such socket");
  if (e.code === "ECONNREFUSED") return new ApiUnreachable(socket, "nothing answers (stale)");
  if (e.code === "EACCES") return new ApiUnreachable(socket, "permission denied");
  if (e.code === "ENOTSOCK") return new ApiUnreachable(socket, "not a socket");
  return e;
}

/** One request; resolves with the whole answer. `timeoutMs` bounds the wait for it. */
export function apiRequest(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath: socket,
      method,
      path,
      agent: false,
      headers: payload === undefined
        ? {}
        : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: the caller sees `text`
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer from ${socket} within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(unreachable(socket, e));
    });
    req.end(payload);
  });
}

/**
 * The machine's events (GET /v1/events, NDJSON), one object at a time, until the stream
 * ends (the machine exited) or the reader stops.
 */
export async function* apiEvents(socket: string): AsyncGenerator<Record<string, unknown>> {
  const queue: (Record<string, unknown> | Error | null)[] = [];
  let wake: (() => void) | null = null;
  const push = (item: Record<string, unknown> | Error | null) => {
    queue.push(item);
    wake?.();
  };
  let buffered = "";
  const req = http.request(
    { socketPath: socket, method: "GET", path: "/v1/events", agent: false },
    (res) => {
      if (res.statusCode !== 200) {
        push(new Error(`GET /v1/events answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) push(JSON.parse(line));
        }
      });
      res.on("end", () => push(null));
      res.on("error", (e: Error) => push(e));
    },
  );
  req.on("error", (e: NodeJS.ErrnoException) => push(unreachable(socket, e)));
  req.end();
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((r) => wake = r);
      wake = null;
      const item = queue.shift()!;
      if (item === null) return;
      if (item instanceof Error) throw item;
      yield item;
    }
  } finally {
    req.destroy();
  }
}
