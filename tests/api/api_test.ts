/**
 * The control API as users drive it: `vmdesc boot --api-sock` as a real process, curl
 * (`curl --unix-socket`) as the client for every resource and every error class, each
 * answer held to docs/api/openapi.json; the socket's life (mode 0600, a live one refused,
 * a stale one replaced, removed on every way out); `vmdesc ctl` and `vmdesc ps`.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { buildGuests } from "../../examples/guests/build.ts";
import { vmdescArgv } from "../../bench/vmdesc_command.ts";
import { skipReason } from "../skip.ts";
import { compileEverySchema, DOC, seen } from "./openapi.ts";
import { bootWithApi, curl, exists, followEvents, ROOT, sleep, TICKER, until } from "./helpers.ts";

const kvm = skipReason("control API api tests", { kvm: true }) === null;
if (!kvm) console.log("skip control API tests: /dev/kvm is absent");
const test = (name: string, fn: (dir: string) => Promise<void>) =>
  Deno.test({
    name,
    ignore: !kvm,
    async fn() {
      await buildGuests(["ticker", "hello", "triple-fault"]);
      const dir = await Deno.makeTempDir({ prefix: "vmdesc-api-" });
      try {
        await fn(dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

const decoder = new TextDecoder();

/** `vmdesc ARGS` run to its end (as the task runs it). */
async function vmdesc(args: string[], env: Record<string, string> = {}) {
  const [cmd, ...rest] = vmdescArgv(Deno.execPath(), args);
  const o = await new Deno.Command(cmd, {
    args: rest,
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", ...env },
  }).output();
  return { code: o.code, stdout: decoder.decode(o.stdout), stderr: decoder.decode(o.stderr) };
}

Deno.test("openapi: the document's every schema compiles, and its routes are the server's", async () => {
  ok(compileEverySchema() > 10);
  const paths = Object.keys(DOC.paths).sort();
  deepEqual(paths, [
    "/",
    "/v1",
    "/v1/actions",
    "/v1/disks",
    "/v1/disks/{id}",
    "/v1/events",
    "/v1/machine",
    "/v1/machine/plan",
    "/v1/machine/stats",
  ]);
  // Every operation documents its errors; actions document every error class.
  const codes = (DOC.components.schemas.Error as {
    properties: { error: { properties: { code: { enum: string[] } } } };
  }).properties.error.properties.code.enum;
  const server = await Deno.readTextFile(`${ROOT}runtime/api/server.ts`);
  for (const code of codes) ok(server.includes(`"${code}"`), `the server uses error code ${code}`);
  for (const m of server.matchAll(/new ApiError\(\s*\d+,\s*"([a-z_]+)"/g)) {
    ok(codes.includes(m[1]), `error code ${m[1]} is documented`);
  }
});

test("api: every resource over curl, live, and a clean stop with its status", async (dir) => {
  const sock = `${dir}/m.sock`;
  const m = await bootWithApi([TICKER, "--machine", "ticker"], sock);
  try {
    equal(Deno.statSync(sock).mode! & 0o777, 0o600, "the socket is mode 0600");
    for (const p of ["/", "/v1", "/v1/"]) equal((await curl(sock, "GET", p)).status, 200, p);
    const info = (await curl(sock, "GET", "/v1/machine")).json as Record<string, unknown>;
    equal(info.name, "ticker");
    equal(info.state, "running");
    equal(info.socket, sock);
    equal(info.pid, m.child.pid);
    deepEqual(info.actions, ["pause", "stop"]);
    equal(info.reset_path, null);
    deepEqual(info.vcpus, [{ index: 0, state: "running" }]);
    // The full Plan is the one `vmdesc plan --json` shows.
    const plan = (await curl(sock, "GET", "/v1/machine/plan")).json;
    const shown = await vmdesc(["plan", "--json", TICKER, "--machine", "ticker"]);
    deepEqual(plan, JSON.parse(shown.stdout));
    // Live stats: they move while the guest runs.
    const s1 = (await curl(sock, "GET", "/v1/machine/stats")).json as Record<string, number>;
    await sleep(200);
    const s2 = (await curl(sock, "GET", "/v1/machine/stats")).json as Record<string, number>;
    ok(s2.exits_total > s1.exits_total, `exits grow: ${s1.exits_total} → ${s2.exits_total}`);
    const com1 = (s2 as unknown as {
      devices: { id: string; pio_exits: number; model: { tx_bytes: number } }[];
    })
      .devices.find((d) => d.id === "com1")!;
    ok(com1.pio_exits > 0 && com1.model.tx_bytes > 0, "the UART's exits and its own counters");
    // Events, in both formats, from two readers at once.
    const ndjson = followEvents(sock);
    const sse = followEvents(sock, true);
    await until(
      () => ndjson.soFar().length > 0 && sse.soFar().length > 0,
      5000,
      "the streams open",
    );
    const paused = await curl(sock, "POST", "/v1/actions", { body: '{"action":"pause"}' });
    deepEqual(paused.json, { action: "pause", state: "paused" });
    const p1 = (await curl(sock, "GET", "/v1/machine/stats")).json as Record<string, number>;
    await sleep(150);
    const p2 = (await curl(sock, "GET", "/v1/machine/stats")).json as Record<string, number>;
    equal(p2.exits_total, p1.exits_total, "no exits while paused");
    equal(p2.state, "paused");
    const pinfo = (await curl(sock, "GET", "/v1/machine")).json as Record<string, unknown>;
    deepEqual(pinfo.vcpus, [{ index: 0, state: "paused" }]);
    deepEqual(pinfo.actions, ["resume", "stop"]);
    deepEqual((await curl(sock, "POST", "/v1/actions", { body: '{"action":"resume"}' })).json, {
      action: "resume",
      state: "running",
    });
    const pausedMs =
      ((await curl(sock, "GET", "/v1/machine")).json as { paused_ms: number }).paused_ms;
    ok(pausedMs >= 150, `paused_ms counts the pause (${pausedMs})`);
    const stop = await curl(sock, "POST", "/v1/actions", { body: '{"action":"stop"}' });
    deepEqual(stop.json, {
      action: "stop",
      state: "exited",
      exit: { reason: "stopped", exit_status: 0, message: "stopped on request" },
    });
    equal(await m.status, 0, "vmdesc boot exits with the stop's status");
    ok(!exists(sock), "the socket is gone");
    for (const stream of [ndjson, sse]) {
      const { status, events } = await stream.ended;
      equal(status, 200);
      const kinds = events.map((e) => e.type === "state" ? `${e.from}→${e.to}` : e.type);
      equal(kinds[0], "open");
      deepEqual(
        kinds.filter((k) => k !== "warning"),
        ["open", "running→paused", "paused→running", "running→stopping", "stopping→exited", "exit"],
      );
      const exit = events[events.length - 1];
      equal(exit.reason, "stopped");
      const seqs = events.slice(1).map((e) => e.seq as number);
      deepEqual(seqs, seqs.map((_, i) => seqs[0] + i), "numbered without gaps");
    }
  } finally {
    try {
      m.child.kill("SIGKILL");
    } catch { /* ended */ }
    await m.status;
  }
});

test("api: every error class, answered with its code and status", async (dir) => {
  const sock = `${dir}/e.sock`;
  const m = await bootWithApi([TICKER, "--machine", "ticker"], sock);
  const post = (body: string, args: string[] = []) =>
    curl(sock, "POST", "/v1/actions", { body, args });
  const code = (a: { json: unknown }) => (a.json as { error: { code: string } }).error.code;
  try {
    for (
      const [body, status, c] of [
        ['{"action": "pause"', 400, "bad_json"],
        ["[1, 2]", 400, "bad_json"],
        ["", 400, "bad_json"],
        ['{"action": "pause", "force": true}', 400, "unknown_field"],
        ["{}", 400, "missing_field"],
        ['{"action": "explode"}', 400, "invalid_value"],
        ['{"action": 3}', 400, "invalid_value"],
        ['{"action": "resume"}', 409, "state_conflict"],
        ['{"action": "reset"}', 409, "no_reset_path"],
      ] as const
    ) {
      const a = await post(body);
      equal(a.status, status, body);
      equal(code(a), c, body);
    }
    const conflict = await post('{"action": "resume"}');
    equal((conflict.json as { error: { state: string } }).error.state, "running");
    const unknown = await post('{"action": "pause", "force": true}');
    equal((unknown.json as { error: { field: string } }).error.field, "force");
    const nf = await curl(sock, "GET", "/v2/machine");
    equal(nf.status, 404);
    equal(code(nf), "not_found");
    for (
      const [method, path] of [["DELETE", "/v1/machine"], ["GET", "/v1/actions"], ["PUT", "/"]]
    ) {
      const a = await curl(sock, method, path);
      equal(a.status, 405, `${method} ${path}`);
      equal(code(a), "method_not_allowed");
      ok(a.headers["allow"], "the Allow header lists the methods");
    }
    // Too large: declared (refused before reading) and streamed chunk by chunk.
    const big = "x".repeat(100 * 1024);
    const declared = await post(`{"action": "${big}"}`);
    equal(declared.status, 413);
    equal(code(declared), "body_too_large");
    const file = `${dir}/big.json`;
    await Deno.writeTextFile(file, `{"action": "${big}"}`);
    const chunked = await curl(sock, "POST", "/v1/actions", {
      args: [
        "-H",
        "content-type: application/json",
        "-H",
        "transfer-encoding: chunked",
        "--data-binary",
        `@${file}`,
      ],
    });
    equal(chunked.status, 413);
    equal(code(chunked), "body_too_large");
    // A request the HTTP parser itself refuses (not HTTP at all) gets a 400 without our body; the
    // machine goes on.
    const conn = await Deno.connect({ transport: "unix", path: sock });
    await conn.write(new TextEncoder().encode("NOT HTTP\r\n\r\n"));
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    match(decoder.decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 400/);
    conn.close();
    equal(((await curl(sock, "GET", "/v1/machine")).json as { state: string }).state, "running");
    // Stopped: every action is a conflict now... the process has ended, so ask first.
    equal((await post('{"action":"stop"}')).status, 200);
    equal(await m.status, 0);
    for (
      const c of [
        "bad_json",
        "unknown_field",
        "missing_field",
        "invalid_value",
        "not_found",
        "method_not_allowed",
        "state_conflict",
        "no_reset_path",
        "body_too_large",
      ]
    ) ok(seen.errorCodes.has(c), `error class ${c} was received and checked`);
  } finally {
    try {
      m.child.kill("SIGKILL");
    } catch { /* ended */ }
    await m.status;
  }
});

test("api: reset presses the reset line: the run ends as a guest reset (status 0)", async (dir) => {
  const sock = `${dir}/r.sock`;
  const m = await bootWithApi([TICKER, "--machine", "resettable"], sock);
  try {
    const info = (await curl(sock, "GET", "/v1/machine")).json as Record<string, unknown>;
    equal(info.reset_path, "i8042");
    deepEqual(info.actions, ["pause", "stop", "reset"]);
    equal((await curl(sock, "POST", "/v1/actions", { body: '{"action":"pause"}' })).status, 200);
    const r = await curl(sock, "POST", "/v1/actions", { body: '{"action":"reset"}' });
    deepEqual(r.json, {
      action: "reset",
      state: "exited",
      exit: { reason: "reset", exit_status: 0, message: "reset on request (i8042)" },
    });
    equal(await m.status, 0);
    match(m.stderr.text, /reset on request/);
  } finally {
    await m.status;
  }
});

test("api: the socket: a live one is refused, a stale one replaced, removed on every way out", async (dir) => {
  const sock = `${dir}/s.sock`;
  const first = await bootWithApi([TICKER, "--machine", "ticker"], sock);
  // A live server answers there: refused, nothing booted, the first machine untouched.
  const second = await vmdesc(["boot", TICKER, "--machine", "ticker", "--api-sock", sock]);
  equal(second.code, 10);
  match(second.stderr, /error\[E1030\]: a server already answers on/);
  equal(((await curl(sock, "GET", "/v1/machine")).json as { state: string }).state, "running");
  // Killed without a chance to clean up: the socket stays, stale; the next boot replaces it.
  first.child.kill("SIGKILL");
  await first.status;
  ok(Deno.lstatSync(sock).isSocket, "a stale socket is left by SIGKILL");
  const third = await bootWithApi([TICKER, "--machine", "ticker"], sock);
  equal(((await curl(sock, "GET", "/v1/machine")).json as { pid: number }).pid, third.child.pid);
  // Ctrl-C and SIGTERM end the machine cleanly and remove the socket. (They are heard
  // from run() on: the socket answers a moment before, while the machine is `created`.)
  const running = async (sock: string) => {
    for (let i = 0; i < 500; i++) {
      const { state } = (await curl(sock, "GET", "/v1/machine")).json as { state: string };
      if (state === "running") return;
      await sleep(10);
    }
    throw new Error("the machine did not start running");
  };
  await running(sock);
  third.child.kill("SIGINT");
  equal(await third.status, 130);
  ok(!exists(sock), "removed after Ctrl-C");
  const fourth = await bootWithApi([TICKER, "--machine", "ticker"], sock);
  await running(sock);
  fourth.child.kill("SIGTERM");
  equal(await fourth.status, 143);
  ok(!exists(sock), "removed after SIGTERM");
  // A guest that faults, or ends on its own, takes its socket with it.
  const fault = await vmdesc([
    "boot",
    `${ROOT}examples/guests/faults.vmdesc`,
    "--machine",
    "triple_fault",
    "--api-sock",
    sock,
  ]);
  equal(fault.code, 4, fault.stderr);
  ok(!exists(sock), "removed after a guest fault");
  const hello = await vmdesc(["boot", `${ROOT}examples/hello.vmdesc`, "--api-sock", sock]);
  equal(hello.code, 0, hello.stderr);
  equal(hello.stdout, "Hello from vmdesc guest\n");
  ok(!exists(sock), "removed after the guest's own exit");
  // Not a socket, or nowhere to put one: refused before anything is built.
  await Deno.writeTextFile(`${dir}/file`, "keep me");
  const notSocket = await vmdesc([
    "boot",
    TICKER,
    "--machine",
    "ticker",
    "--api-sock",
    `${dir}/file`,
  ]);
  equal(notSocket.code, 10);
  match(notSocket.stderr, /error\[E1030\]: .*file exists and is not a socket/);
  equal(await Deno.readTextFile(`${dir}/file`), "keep me");
  const noDir = await vmdesc([
    "boot",
    TICKER,
    "--machine",
    "ticker",
    "--api-sock",
    `${dir}/no/such.sock`,
  ]);
  equal(noDir.code, 10);
  match(noDir.stderr, /error\[E1031\]: cannot create the control socket/);
  const long = await vmdesc([
    "boot",
    TICKER,
    "--machine",
    "ticker",
    "--api-sock",
    `${dir}/${"x".repeat(120)}.sock`,
  ]);
  equal(long.code, 10);
  match(long.stderr, /E1031.*longer than a Unix socket address holds/);
});

test("ctl and ps: bare names in the runtime directory, text and JSON", async (dir) => {
  const env = { XDG_RUNTIME_DIR: dir };
  const runDir = `${dir}/vmdesc`;
  const a = await bootWithApi([TICKER, "--machine", "ticker"], "web1", {
    env,
    socketPath: `${runDir}/web1.sock`,
  });
  const b = await bootWithApi([TICKER, "--machine", "smp"], "web2.sock", {
    env,
    socketPath: `${runDir}/web2.sock`,
  });
  try {
    equal(Deno.statSync(runDir).mode! & 0o777, 0o700, "the runtime directory is private");
    // A stale socket too (a vmdesc killed earlier).
    const stale = await bootWithApi([TICKER, "--machine", "ticker"], "gone", {
      env,
      socketPath: `${runDir}/gone.sock`,
    });
    stale.child.kill("SIGKILL");
    await stale.status;
    const ps = await vmdesc(["ps"], env);
    equal(ps.code, 0, ps.stderr);
    const rows = ps.stdout.trim().split("\n");
    match(rows[0], /^NAME\s+STATE\s+UPTIME\s+VCPUS\s+PID\s+MACHINE\s+SOCKET$/);
    match(rows[1], /^gone\s+stale\s+-/);
    match(
      rows[2],
      new RegExp(`^web1\\s+running\\s+\\d+\\.\\d s\\s+1\\s+${a.child.pid}\\s+ticker\\s+`),
    );
    match(
      rows[3],
      new RegExp(`^web2\\s+running\\s+\\d+\\.\\d s\\s+2\\s+${b.child.pid}\\s+smp\\s+`),
    );
    const psJson = JSON.parse((await vmdesc(["ps", "--format", "json"], env)).stdout);
    equal(psJson.dir, runDir);
    deepEqual(psJson.machines.map((r: { name: string; state: string }) => [r.name, r.state]), [
      ["gone", "stale"],
      ["web1", "running"],
      ["web2", "running"],
    ]);
    // ctl by bare name: text for people, the API's own JSON with --format json.
    const info = await vmdesc(["ctl", "web2", "info"], env);
    equal(info.code, 0, info.stderr);
    match(info.stdout, /^machine\s+smp \(pid \d+\)$/m);
    match(info.stdout, /^vCPUs\s+0 running, 1 running$/m);
    const pause = await vmdesc(["ctl", "web2", "pause", "--format", "json"], env);
    deepEqual(JSON.parse(pause.stdout), { action: "pause", state: "paused" });
    const again = await vmdesc(["ctl", "web2", "pause"], env);
    equal(again.code, 1);
    match(again.stderr, /cannot pause a machine that is paused \(state_conflict\)/);
    equal((await vmdesc(["ctl", "web2", "resume"], env)).stdout, "running\n");
    const stats = await vmdesc(["ctl", `${runDir}/web1.sock`, "stats"], env);
    match(stats.stdout, /^state running\n── vmdesc stats ──/);
    const statsJson = JSON.parse(
      (await vmdesc(["ctl", "web1", "stats", "--format", "json"], env)).stdout,
    );
    ok(statsJson.exits_total > 0);
    match((await vmdesc(["ctl", "web1", "plan"], env)).stdout, /^machine ticker/);
    // events: follow until the machine ends; stop from another ctl.
    const [cmd, ...rest] = vmdescArgv(Deno.execPath(), [
      "ctl",
      "web1",
      "events",
      "--format",
      "json",
    ]);
    const follower = new Deno.Command(cmd, { args: rest, cwd: ROOT, env, stdout: "piped" })
      .output();
    await sleep(500);
    const stop = await vmdesc(["ctl", "web1", "stop"], env);
    equal(stop.stdout, "exited: stopped on request (status 0)\n");
    const events = decoder.decode((await follower).stdout).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    equal(events[0].type, "open");
    equal(events[events.length - 1].type, "exit");
    equal(await a.status, 0);
    // Gone: E2004.
    const gone = await vmdesc(["ctl", "web1", "info"], env);
    equal(gone.code, 1);
    match(gone.stderr, /error\[E2004\]: cannot reach the machine at .*web1\.sock: no such socket/);
    const staleCtl = await vmdesc(["ctl", "gone", "info"], env);
    match(staleCtl.stderr, /nothing answers \(stale\)/);
    // Usage errors.
    const bad = await vmdesc(["ctl", "web2", "pasue"], env);
    equal(bad.code, 2);
    match(bad.stderr, /unknown ctl command 'pasue'\n {2}= help: did you mean 'pause'\?/);
    await vmdesc(["ctl", "web2", "stop"], env);
    equal(await b.status, 0);
    equal(
      (await vmdesc(["ps"], env)).stdout.trim().split("\n").length,
      2,
      "header and the stale one",
    );
  } finally {
    for (const p of [a, b]) {
      try {
        p.child.kill("SIGKILL");
      } catch { /* ended */ }
      await p.status;
    }
  }
});
