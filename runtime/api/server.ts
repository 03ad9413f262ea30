/**
 * The control API: HTTP/1.1 + JSON on a Unix socket, serving one machine (the front
 * door's object, runtime/mod.ts). What it offers is written down in docs/api/openapi.json
 * (a test holds every answer the suite receives to that document):
 *
 *   GET  /v1/machine          name, state, vCPUs, uptime, exit, allowed actions, Plan summary
 *   GET  /v1/machine/plan     the full Plan
 *   GET  /v1/machine/stats    live stats (exits by reason and device, per vCPU, model counters)
 *   POST /v1/actions          {"action": "pause" | "resume" | "stop" | "reset"}
 *   GET  /v1/events           state changes, warnings, disk swaps and the exit as they happen
 *                             (NDJSON; Server-Sent Events with Accept: text/event-stream)
 *   GET  /v1/disks            the block devices' images now
 *   GET  /v1/disks/{id}       one of them
 *   PUT  /v1/disks/{id}       {"path", "readonly"?}: swap its image while paused
 *
 * Errors are JSON `{"error": {"code", "message"}}` with a stable code and the HTTP status
 * that fits: 400 (bad JSON, unknown or missing fields, bad values), 404, 405 (with Allow),
 * 408 (a body that does not arrive in time), 409 (an action the machine's state does not
 * allow, or a reset without a reset path), 413 (a body over the limit), 500, 503 (over
 * the limit of connections open at once). Errors that
 * come from a coded runtime error (a disk swap's) also carry its `diagnostic` code (E1018,
 * E107x) and `hint`, as `vmdesc` prints them.
 *
 * Threads: the server runs on the thread that created the machine (http.ts: node:http,
 * which holds each connection, so idle ones are closed and their number bounded): every
 * connection waits on its own, so a client that connects and sends nothing, or sends
 * slowly, holds only its own connection (and only until the idle timeout), never the
 * machine or the other clients. That thread's event loop must be free: `vmdesc boot --api-sock` runs the
 * vCPU in a worker (ARCHITECTURE.md, "The control API", has the measurements). The
 * machine answers from shared memory (states, counters) and, for the models' own
 * counters, one short call to vCPU 0.
 */
import type { MachineEvent, RunResult, VmdescMachine } from "../mod.ts";
import { StateError } from "../lifecycle.ts";
import { RuntimeError } from "../errors.ts";
import { claimSocketPath, listenPrivate } from "./socket.ts";
import { serveHttp } from "./http.ts";

/** Largest request body accepted (bytes); larger is 413. */
export const BODY_LIMIT = 64 * 1024;
/** How long a request body may take to arrive (ms); slower is 408. */
export const BODY_TIMEOUT_MS = 5000;

export interface ApiServer {
  /** The socket's path. */
  readonly path: string;
  /**
   * Answers what is in flight (event streams get the machine's last events when it has
   * exited, and end), then removes the socket; a client that does not read is given up
   * after CLOSE_WAIT_MS. Idempotent.
   */
  close(): Promise<void>;
}

/** How long close() waits for answers in flight (a client that does not read them). */
export const CLOSE_WAIT_MS = 2000;
/**
 * Most connections open at once; one more is answered 503 `too_many_connections` and
 * closed. Firecracker's API server allows 10; vmdesc's own tests and `vmdesc ps` open
 * more at once (bursts of 100 requests and streams), and a connection costs one fd.
 */
export const MAX_CONNECTIONS = 256;
/**
 * How long a connection may stay open without a request in flight (ms): a client that
 * connects and sends nothing, or stops halfway through its headers, or keeps a connection
 * alive between requests, is closed then. (Firecracker keeps idle connections for ever;
 * nginx closes a keep-alive connection after 75 s, and one without its headers after 60.)
 */
export const IDLE_TIMEOUT_MS = 60_000;

export interface ApiServerOptions {
  /** The socket path (claimed first: a stale socket is removed, a live one refused). */
  path: string;
  /** Body size limit (bytes), default BODY_LIMIT. */
  bodyLimit?: number;
  /** Body arrival limit (ms), default BODY_TIMEOUT_MS. */
  bodyTimeoutMs?: number;
  /** Connections open at once, default MAX_CONNECTIONS. */
  maxConnections?: number;
  /** Idle connection limit (ms), default IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
}

/** An error answer: HTTP status, stable code, message (and, for 409, the state). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { ...JSON_HEADERS, ...headers },
  });
}

function errorResponse(e: ApiError, headers: Record<string, string> = {}): Response {
  return json({ error: { code: e.code, message: e.message, ...e.extra } }, e.status, headers);
}

type Method = "GET" | "POST" | "PUT";
/** `id`: the {id} of a templated path (/v1/disks/{id}), decoded. */
type Handler = (req: Request, ctx: Context, id: string) => Promise<Response> | Response;

interface Context {
  machine: VmdescMachine;
  path: string;
  bodyLimit: number;
  bodyTimeoutMs: number;
  /** Aborted when the server closes before the machine exited: event streams end now. */
  closing: AbortSignal;
}

const ACTIONS = ["pause", "resume", "stop", "reset"] as const;
type Action = typeof ACTIONS[number];

/** The actions the machine's state allows now. */
export function allowedActions(m: VmdescMachine): Action[] {
  switch (m.state) {
    case "running":
      return m.resetPath ? ["pause", "stop", "reset"] : ["pause", "stop"];
    case "paused":
      return m.resetPath ? ["resume", "stop", "reset"] : ["resume", "stop"];
    default:
      return [];
  }
}

function exitOf(r: RunResult | null) {
  return r === null ? null : { reason: r.reason, exit_status: r.exitStatus, message: r.message };
}

/** The machine as GET /v1/machine shows it. */
export function machineInfo(m: VmdescMachine, socket: string) {
  const plan = m.plan;
  const times = m.times;
  const time = m.guestTime;
  return {
    name: plan.machine,
    state: m.state,
    pid: Deno.pid,
    socket,
    started_at: times ? new Date(times.startedAt).toISOString() : null,
    uptime_ms: Math.round(times?.uptimeMs ?? 0),
    paused_ms: Math.round(times?.pausedMs ?? 0),
    vcpus: m.vcpuStates.map((state, index) => ({ index, state })),
    exit: exitOf(m.result),
    actions: allowedActions(m),
    reset_path: m.resetPath,
    guest_time: time === null ? null : { kvmclock_held: time.kvmclockHeld, tsc_held: time.tscHeld },
    plan: {
      machine: plan.machine,
      source: plan.source,
      cpus: plan.cpus.count,
      memory_bytes: plan.memslots
        .filter((s) => s.backing.kind !== "ones_alias")
        .reduce((n, s) => n + s.size, 0),
      devices: plan.devices.map((d) => ({ id: d.id, kind: d.kind })),
      pci: plan.pci.map((f) => ({ bdf: f.bdf, kind: f.kind })),
      boot: { protocol: plan.boot.protocol, path: plan.boot.path },
    },
  };
}

/** The request's JSON body: an object, within the size and time limits. */
async function readJson(req: Request, ctx: Context): Promise<Record<string, unknown>> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > ctx.bodyLimit) {
    throw new ApiError(413, "body_too_large", `the body is over ${ctx.bodyLimit} bytes`);
  }
  let text = "";
  if (req.body) {
    const reader = req.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reader.cancel().catch(() => {});
    }, ctx.bodyTimeoutMs);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > ctx.bodyLimit) {
          reader.cancel().catch(() => {});
          throw new ApiError(413, "body_too_large", `the body is over ${ctx.bodyLimit} bytes`);
        }
        chunks.push(value);
      }
    } catch (e) {
      if (e instanceof ApiError) throw e;
      if (!late) throw e;
    } finally {
      clearTimeout(timer);
    }
    if (late) {
      throw new ApiError(
        408,
        "request_timeout",
        `the body did not arrive within ${ctx.bodyTimeoutMs} ms`,
      );
    }
    const all = new Uint8Array(size);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(all);
    } catch {
      throw new ApiError(400, "bad_json", "the body is not UTF-8 text");
    }
  }
  if (text.trim() === "") {
    throw new ApiError(400, "bad_json", "the body is empty; send a JSON object");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, "bad_json", `the body is not JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError(400, "bad_json", "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Resolves with the run's result once the machine has exited. */
function exited(m: VmdescMachine): Promise<RunResult | null> {
  if (m.state === "exited") return Promise.resolve(m.result);
  return new Promise((resolve) => {
    const off = m.onStateChange(({ to }) => {
      if (to !== "exited") return;
      off();
      resolve(m.result);
    });
  });
}

async function action(req: Request, ctx: Context): Promise<Response> {
  const body = await readJson(req, ctx);
  for (const k of Object.keys(body)) {
    if (k !== "action") {
      throw new ApiError(
        400,
        "unknown_field",
        `unknown field '${k}' (an action has only 'action')`,
        {
          field: k,
        },
      );
    }
  }
  if (!("action" in body)) {
    throw new ApiError(400, "missing_field", "missing field 'action'", { field: "action" });
  }
  const name = body.action;
  if (typeof name !== "string" || !(ACTIONS as readonly string[]).includes(name)) {
    throw new ApiError(
      400,
      "invalid_value",
      `'action' must be one of ${ACTIONS.join(", ")}, not ${JSON.stringify(name)}`,
      { field: "action" },
    );
  }
  const m = ctx.machine;
  const a = name as Action;
  try {
    if (a === "pause") await m.pause();
    else if (a === "resume") await m.resume();
    else {
      if (a === "reset" && m.resetPath === null) {
        throw new ApiError(
          409,
          "no_reset_path",
          "this machine has no reset path (an i8042, or a pci_host decoding port 0xcf9)",
          { state: m.state },
        );
      }
      if (a === "stop") m.stop();
      else m.reset();
      const r = await exited(m);
      return json({ action: a, state: m.state, exit: exitOf(r) });
    }
  } catch (e) {
    if (e instanceof StateError) {
      throw new ApiError(409, "state_conflict", e.message, { state: m.state });
    }
    throw e;
  }
  return json({ action: a, state: m.state });
}

const encoder = new TextEncoder();

/** The machine's events from now on, as NDJSON or Server-Sent Events. */
function events(req: Request, ctx: Context): Response {
  const m = ctx.machine;
  const sse = (req.headers.get("accept") ?? "").includes("text/event-stream");
  const source = m.events();
  const line = (e: Record<string, unknown>) =>
    encoder.encode(
      sse
        ? `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`
        : JSON.stringify(e) + "\n",
    );
  const times = m.times;
  const open = {
    seq: 0,
    time: new Date().toISOString(),
    uptime_ms: Math.round(times?.uptimeMs ?? 0),
    type: "open",
    state: m.state,
    exit: exitOf(m.result),
  };
  let sentOpen = false;
  const stop = () => void source.return();
  ctx.closing.addEventListener("abort", stop, { once: true });
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentOpen) {
        sentOpen = true;
        controller.enqueue(line(open));
        // A machine that has exited has nothing more to say.
        if (m.state === "exited") {
          controller.close();
          stop();
        }
        return;
      }
      const next = ctx.closing.aborted ? { done: true as const } : await source.next();
      if (next.done) {
        ctx.closing.removeEventListener("abort", stop);
        controller.close();
        return;
      }
      controller.enqueue(line(next.value as MachineEvent & Record<string, unknown>));
    },
    cancel() {
      ctx.closing.removeEventListener("abort", stop);
      stop();
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    headers: {
      "content-type": sse ? "text/event-stream" : "application/x-ndjson",
      "cache-control": "no-store",
    },
  });
}

/** A coded runtime error of a disk swap, as an API error (its code and hint kept). */
function diskError(e: RuntimeError, m: VmdescMachine): ApiError {
  const extra = { diagnostic: e.code, ...(e.hint ? { hint: e.hint } : {}) };
  switch (e.code) {
    case "E1070":
      return new ApiError(404, "not_found", e.message, extra);
    case "E1071":
      return new ApiError(409, "state_conflict", e.message, { state: m.state, ...extra });
    case "E1072":
      return new ApiError(409, "read_only_disk", e.message, extra);
    case "E1018":
      return new ApiError(400, "bad_image", e.message, extra);
    default:
      return new ApiError(500, "internal", e.message, extra);
  }
}

function findDisk(m: VmdescMachine, id: string) {
  const d = m.disks.find((d) => d.id.toLowerCase() === id.toLowerCase());
  if (!d) {
    const ids = m.disks.map((d) => d.id);
    throw new ApiError(
      404,
      "not_found",
      `no disk '${id}' in this machine` + (ids.length ? ` (its disks: ${ids.join(", ")})` : ""),
    );
  }
  return d;
}

/** PUT /v1/disks/{id}: {"path": "/abs/image", "readonly"?: bool}, while paused. */
async function swapDisk(req: Request, ctx: Context, id: string): Promise<Response> {
  const body = await readJson(req, ctx);
  for (const k of Object.keys(body)) {
    if (k !== "path" && k !== "readonly") {
      throw new ApiError(
        400,
        "unknown_field",
        `unknown field '${k}' (a disk takes 'path' and 'readonly')`,
        { field: k },
      );
    }
  }
  if (!("path" in body)) {
    throw new ApiError(400, "missing_field", "missing field 'path'", { field: "path" });
  }
  const { path, readonly } = body;
  if (typeof path !== "string" || path === "" || path.includes("\0")) {
    throw new ApiError(400, "invalid_value", "'path' must be a file's path", { field: "path" });
  }
  if (readonly !== undefined && typeof readonly !== "boolean") {
    throw new ApiError(400, "invalid_value", "'readonly' must be true or false", {
      field: "readonly",
    });
  }
  const m = ctx.machine;
  try {
    return json(await m.swapDisk(id, { path, readonly }));
  } catch (e) {
    if (e instanceof RuntimeError) throw diskError(e, m);
    throw e;
  }
}

const INDEX = {
  api: "vmdesc control API",
  version: 1,
  resources: {
    machine: "/v1/machine",
    plan: "/v1/machine/plan",
    stats: "/v1/machine/stats",
    actions: "/v1/actions",
    events: "/v1/events",
    disks: "/v1/disks",
  },
  openapi: "docs/api/openapi.json in the vmdesc repository",
};

const ROUTES: Record<string, Partial<Record<Method, Handler>>> = {
  "/": { GET: () => json(INDEX) },
  "/v1": { GET: () => json(INDEX) },
  "/v1/machine": { GET: (_req, ctx) => json(machineInfo(ctx.machine, ctx.path)) },
  "/v1/machine/plan": { GET: (_req, ctx) => json(ctx.machine.plan) },
  "/v1/machine/stats": {
    GET: async (_req, ctx) => json({ state: ctx.machine.state, ...await ctx.machine.stats() }),
  },
  "/v1/actions": { POST: action },
  "/v1/events": { GET: events },
  "/v1/disks": { GET: (_req, ctx) => json({ disks: ctx.machine.disks }) },
  "/v1/disks/{id}": {
    GET: (_req, ctx, id) => json(findDisk(ctx.machine, id)),
    PUT: swapDisk,
  },
};

/** Paths with a parameter: the prefix before {id}, and the route's key. */
const TEMPLATES: [prefix: string, key: string][] = [["/v1/disks/", "/v1/disks/{id}"]];

async function route(req: Request, ctx: Context): Promise<Response> {
  let path: string;
  try {
    path = new URL(req.url).pathname;
  } catch {
    throw new ApiError(400, "bad_request", "the request target is not a path");
  }
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  let key = path;
  let id = "";
  for (const [prefix, template] of TEMPLATES) {
    const rest = path.startsWith(prefix) ? path.slice(prefix.length) : "";
    if (rest === "" || rest.includes("/")) continue;
    try {
      id = decodeURIComponent(rest);
    } catch {
      throw new ApiError(400, "bad_request", "the request target is not a path");
    }
    key = template;
  }
  const methods = Object.hasOwn(ROUTES, key) ? ROUTES[key] : null;
  if (!methods) throw new ApiError(404, "not_found", `no resource at ${path}`);
  const handler = Object.hasOwn(methods, req.method) ? methods[req.method as Method] : undefined;
  if (!handler) {
    const allow = Object.keys(methods).join(", ");
    return errorResponse(
      new ApiError(405, "method_not_allowed", `${path} takes ${allow}, not ${req.method}`),
      { allow },
    );
  }
  return await handler(req, ctx, id);
}

/**
 * Serves `machine` on a Unix socket at `opts.path` (claimed first: E1030 when a live
 * server answers there, E1031 when it cannot be created).
 */
export async function serveApi(machine: VmdescMachine, opts: ApiServerOptions): Promise<ApiServer> {
  const path = await claimSocketPath(opts.path);
  const closing = new AbortController();
  const ctx: Context = {
    machine,
    path,
    bodyLimit: opts.bodyLimit ?? BODY_LIMIT,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? BODY_TIMEOUT_MS,
    closing: closing.signal,
  };
  const internal = (e: unknown) =>
    errorResponse(new ApiError(500, "internal", (e as Error)?.message ?? String(e)));
  const maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  const server = await serveHttp(path, async (req) => {
    try {
      return await route(req, ctx);
    } catch (e) {
      if (e instanceof ApiError) return errorResponse(e);
      return internal(e);
    }
  }, {
    maxConnections,
    idleTimeoutMs: opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
    tooMany: () =>
      errorResponse(
        new ApiError(
          503,
          "too_many_connections",
          `this API holds at most ${maxConnections} connections at once`,
        ),
        { connection: "close" },
      ),
    failed: internal,
  }, (bind) => listenPrivate(path, bind));
  const { dev, ino } = Deno.statSync(path);
  // The socket goes on every way out of the process: close() removes it, and at exit
  // (Deno.exit included) this removes it if it is still ours.
  const removeAtExit = () => {
    try {
      const st = Deno.statSync(path);
      if (st.dev === dev && st.ino === ino) Deno.removeSync(path);
    } catch {
      // gone already
    }
  };
  globalThis.addEventListener("unload", removeAtExit);
  let closed: Promise<void> | null = null;
  return {
    path,
    close() {
      closed ??= (async () => {
        // An exited machine's streams end by themselves once they have sent its last
        // events (its exit); a machine still running would keep them open.
        if (machine.state !== "exited") closing.abort();
        await server.shutdown(CLOSE_WAIT_MS);
        removeAtExit();
        globalThis.removeEventListener("unload", removeAtExit);
      })();
      return closed;
    },
  };
}
