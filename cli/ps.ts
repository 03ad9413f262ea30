/**
 * `vmdesc ps`: the machines running under the current user, found by their control
 * sockets in the runtime directory (where `vmdesc boot --api-sock NAME` puts a bare
 * name), each asked for its state and uptime. A socket nothing answers on is a machine
 * that was killed: it is listed as stale (the next `vmdesc boot` with that name removes it).
 */
import { out, startTextOrJson, usageError } from "./output.ts";
import { table } from "./plan_table.ts";
import { duration } from "./ctl.ts";

export const HELP = `List the machines running under the current user.

Usage: vmdesc ps [options]

Machines started with 'vmdesc boot --api-sock NAME' (a bare name) have their
control socket in $XDG_RUNTIME_DIR/vmdesc/ (or /tmp/vmdesc-$UID/); each one
found there is asked for its state and uptime. Sockets nothing answers on (left
by a vmdesc that was killed) are listed as stale.

Options:
  --format text|json   text (default): NAME STATE UPTIME VCPUS PID MACHINE SOCKET;
                       json: {"version": 1, "dir", "machines": [{name, socket,
                       state, uptime_ms, paused_ms, vcpus, pid, machine}]}
                       (state "stale", the rest null, for a dead socket)
  -h, --help           show this help

Exit status: 0 ok, 2 usage error.
`;

interface Row {
  name: string;
  socket: string;
  state: string;
  uptime_ms: number | null;
  paused_ms: number | null;
  vcpus: number | null;
  pid: number | null;
  machine: string | null;
}

/** How long one machine may take to say how it is (a paused or busy one answers at once). */
const ASK_MS = 2000;

export async function run(args: string[]): Promise<number> {
  const start = startTextOrJson("ps", args, HELP);
  if (typeof start === "number") return start;
  const { parsed, json } = start;
  if (parsed.positionals.length > 0) {
    return usageError(
      { message: "ps takes no arguments", hint: "vmdesc ps [--format json]" },
      "ps",
    );
  }
  const api = await import("../runtime/api/mod.ts");
  const dir = api.runtimeDir();
  const sockets: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".sock")) sockets.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  sockets.sort();
  const rows = await Promise.all(sockets.map(async (file): Promise<Row> => {
    const socket = `${dir}/${file}`;
    const row: Row = {
      name: file.slice(0, -".sock".length),
      socket,
      state: "stale",
      uptime_ms: null,
      paused_ms: null,
      vcpus: null,
      pid: null,
      machine: null,
    };
    try {
      const r = await api.apiRequest(socket, "GET", "/v1/machine", undefined, ASK_MS);
      const i = r.body as {
        state: string;
        uptime_ms: number;
        paused_ms: number;
        vcpus: unknown[];
        pid: number;
        name: string;
      } | null;
      if (r.status !== 200 || !i) return { ...row, state: "unknown" };
      return {
        ...row,
        state: i.state,
        uptime_ms: i.uptime_ms,
        paused_ms: i.paused_ms,
        vcpus: i.vcpus.length,
        pid: i.pid,
        machine: i.name,
      };
    } catch (e) {
      if (e instanceof api.ApiUnreachable) return row;
      return { ...row, state: "unknown" };
    }
  }));
  if (json) {
    out(JSON.stringify({ version: 1, dir, machines: rows }, null, 2) + "\n");
    return 0;
  }
  if (rows.length === 0) {
    out(`no machines (no control sockets in ${dir})\n`);
    return 0;
  }
  out(table(
    ["NAME", "STATE", "UPTIME", "VCPUS", "PID", "MACHINE", "SOCKET"],
    rows.map((r) => [
      r.name,
      r.state,
      r.uptime_ms === null ? "-" : duration(r.uptime_ms),
      r.vcpus === null ? "-" : String(r.vcpus),
      r.pid === null ? "-" : String(r.pid),
      r.machine ?? "-",
      r.socket,
    ]),
    "",
  ));
  return 0;
}
