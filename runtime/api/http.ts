/**
 * The control API's HTTP/1.1 server on its Unix socket: `node:http` (Deno's Node
 * compatibility: each connection a `net.Socket` of its own), answering with the routes'
 * `Request → Response` handler, plus what a server on a socket others can open needs and
 * `Deno.serve` does not offer: a hold on each connection.
 *
 * - **Idle connections close.** A connection without a request in flight (just opened,
 *   between keep-alive requests, or stopped halfway through its headers) is closed
 *   `idleTimeoutMs` after its last answer or its opening, whether or not bytes trickle in
 *   meanwhile. A request in flight (an event stream that lasts the machine's life, a stop
 *   waiting for the machine to end) holds it open however long it takes: its body has its
 *   own limit (the routes' 408).
 * - **At most `maxConnections` at once.** One more is answered 503
 *   `too_many_connections` and closed, as Firecracker's API server does past its 10
 *   (micro_http answers 503 "Too many open connections"); if it sends no request within
 *   a second it is closed without one.
 *
 * `Deno.serve` (hyper) has no hook to a connection (no accept callback, no per-connection
 * timeout, no count), and its `node:http` emulation once ignored `headersTimeout`; a
 * `net.Socket` here has `setTimeout`, `destroy` and a `close` event, which is all this needs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";

/** A connection as the server keeps it. */
interface Connection {
  socket: Socket;
  /** Requests answered or being answered, not yet finished. */
  inFlight: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Over the limit: its request is answered 503 and the connection closed. */
  refused: boolean;
}

export interface HttpOptions {
  maxConnections: number;
  idleTimeoutMs: number;
  /** The answer to a connection over the limit. */
  tooMany: () => Response;
  /** The answer when the handler throws. */
  failed: (e: unknown) => Response;
}

export interface HttpServer {
  /** Connections open now (tests, stats). */
  readonly connections: number;
  /**
   * Stops accepting, closes idle connections at once, and waits up to `waitMs` for the
   * answers in flight to finish; then closes whatever is left.
   */
  shutdown(waitMs: number): Promise<void>;
}

/** How long a connection over the limit may take to send the request its 503 answers. */
const REFUSED_GRACE_MS = 1000;

/** The request as the handler sees it (a Fetch API Request). */
function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  const withBody = req.method !== "GET" && req.method !== "HEAD";
  return new Request(`http://localhost${req.url ?? "/"}`, {
    method: req.method,
    headers,
    ...(withBody
      ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: "half" }
      : {}),
  } as RequestInit);
}

/** Writes `response` to `res`: a JSON answer with its length, a stream chunk by chunk. */
async function send(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, key) => res.setHeader(key, value));
  const type = response.headers.get("content-type") ?? "";
  const streaming = type.startsWith("text/event-stream") || type.startsWith("application/x-ndjson");
  if (!response.body) {
    res.end();
    return;
  }
  if (!streaming) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    res.setHeader("content-length", bytes.length);
    res.end(bytes);
    return;
  }
  res.flushHeaders();
  const reader = response.body.getReader();
  // The client went away: the stream's source is told (an event reader is let go).
  const gone = () => void reader.cancel().catch(() => {});
  res.once("close", gone);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("drain", go);
            res.off("close", go);
            resolve();
          };
          res.on("drain", go);
          res.on("close", go);
        });
      }
    }
  } finally {
    res.off("close", gone);
    if (!res.destroyed) res.end();
  }
}

/**
 * Serves `handler` on the Unix socket `path` (made by `listen`, which the caller wraps to
 * create it privately). Resolves once it listens.
 */
export async function serveHttp(
  path: string,
  handler: (req: Request) => Promise<Response>,
  opts: HttpOptions,
  listen: (bind: () => Promise<void>) => Promise<void>,
): Promise<HttpServer> {
  const open = new Set<Connection>();
  const bySocket = new WeakMap<Socket, Connection>();
  let stopping = false;

  const arm = (c: Connection, ms: number) => {
    clearTimeout(c.timer);
    c.timer = setTimeout(() => c.socket.destroy(), ms);
  };

  const server = createServer(async (req, res) => {
    const c = bySocket.get(req.socket);
    if (c) {
      c.inFlight++;
      clearTimeout(c.timer);
    }
    let finished = false;
    const done = () => {
      if (finished || !c) return;
      finished = true;
      c.inFlight--;
      if (c.inFlight === 0 && !c.socket.destroyed) {
        if (stopping || c.refused) c.socket.destroy();
        else arm(c, opts.idleTimeoutMs);
      }
    };
    res.once("finish", done);
    res.once("close", done);
    let response: Response;
    try {
      if (c?.refused) {
        res.shouldKeepAlive = false;
        response = opts.tooMany();
      } else {
        response = await handler(toRequest(req));
      }
    } catch (e) {
      response = opts.failed(e);
    }
    if (stopping) res.shouldKeepAlive = false;
    try {
      await send(res, response);
    } catch {
      res.destroy();
    }
  });
  server.on("connection", (socket: Socket) => {
    const c: Connection = {
      socket,
      inFlight: 0,
      timer: undefined,
      refused: stopping || open.size >= opts.maxConnections,
    };
    open.add(c);
    bySocket.set(socket, c);
    socket.once("close", () => {
      clearTimeout(c.timer);
      open.delete(c);
    });
    arm(c, c.refused ? Math.min(REFUSED_GRACE_MS, opts.idleTimeoutMs) : opts.idleTimeoutMs);
  });
  await listen(() =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    })
  );
  return {
    get connections() {
      return open.size;
    },
    async shutdown(waitMs: number) {
      stopping = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of open) if (c.inFlight === 0) c.socket.destroy();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        closed,
        new Promise((resolve) => timer = setTimeout(resolve, waitMs)),
      ]);
      clearTimeout(timer);
      for (const c of open) c.socket.destroy();
    },
  };
}
