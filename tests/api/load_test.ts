/**
 * The control API under load and against clients that misbehave, while the ticker guest
 * runs and reports how far it gets (its `spins`):
 * - bursts of 100 concurrent requests (50 live stats, 50 event streams), one every 250 ms,
 *   are all answered correctly (each held to the OpenAPI document; every stream sees the
 *   same events in order), and the guest's progress per CPU-second of its vCPU thread in
 *   loaded windows stays near that in quiet ones, interleaved (per CPU-second: this
 *   host's two cores are shared, and a busy neighbour takes the vCPU's CPU away in any
 *   window; `deno task bench api` has the careful measurement, and a flood);
 * - clients that connect and send nothing, stop halfway through their headers, or send a
 *   body a byte at a time hold neither the machine nor the other clients up; the slow
 *   body is answered 408 when its time is up.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { buildGuests } from "../../examples/guests/build.ts";
import { apiEvents, apiRequest } from "../../runtime/api/client.ts";
import { BODY_TIMEOUT_MS } from "../../runtime/api/server.ts";
import { skipReason } from "../skip.ts";
import { checkAnswer } from "./openapi.ts";
import { curl, type Lines, sleep, until, withTicker } from "./helpers.ts";

const kvm = skipReason("control API load tests", { kvm: true }) === null;
if (!kvm) console.log("skip control API load tests: /dev/kvm is absent");
const test = (name: string, fn: (sock: string, stdout: Lines, pid: number) => Promise<void>) =>
  Deno.test({
    name,
    ignore: !kvm,
    async fn() {
      await buildGuests(["ticker"]);
      await withTicker("ticker_20ms", async (m, sock) => {
        await until(() => m.stdout.ticks().length > 20, 10_000, "the guest prints");
        await fn(sock, m.stdout, m.child.pid);
      });
    },
  });

/** The guest's progress (wait-loop rounds per second) over lines arriving in [from, to). */
function progress(stdout: Lines, from: number, to: number): number {
  const spins = stdout.ticks().filter((t) => t.wall >= from && t.wall < to)
    .reduce((n, t) => n + t.spins, 0);
  return spins / ((to - from) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU time (ms) the vCPU worker threads of process `pid` have had so far. */
function vcpuCpuMs(pid: number): number {
  let ms = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      if (!Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/comm`).startsWith("worker-")) {
        continue;
      }
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ms += (Number(f[11]) + Number(f[12])) * 10; // utime + stime, USER_HZ 100
    } catch { /* gone */ }
  }
  return ms;
}

test(
  "load: bursts of 100 concurrent requests, all answered; the guest's progress measured",
  async (sock, stdout, pid) => {
    /** One round: 50 stats and 50 event streams at once; the streams stay open. */
    const round = async () => {
      const stats = Array.from({ length: 50 }, async () => {
        const r = await apiRequest(sock, "GET", "/v1/machine/stats");
        checkAnswer({
          method: "GET",
          path: "/v1/machine/stats",
          status: r.status,
          contentType: String(r.headers["content-type"]),
          text: r.text,
        });
        return (r.body as { exits_total: number }).exits_total;
      });
      const streams = Array.from({ length: 50 }, async () => {
        const it = apiEvents(sock);
        const first = await it.next();
        return { it, first: first.value as Record<string, unknown> };
      });
      const [totals, opened] = await Promise.all([Promise.all(stats), Promise.all(streams)]);
      ok(totals.every((n) => n > 0), "every stats answer counts exits");
      ok(
        opened.every((s) => s.first.type === "open" && s.first.state === "running"),
        "streams open",
      );
      return opened.map((s) => s.it);
    };
    const quiet: number[] = [];
    const loaded: number[] = [];
    /** Wait-loop rounds and vCPU CPU ms, summed over the quiet and the loaded windows. */
    const perCpu = { quiet: { spins: 0, ms: 0 }, loaded: { spins: 0, ms: 0 } };
    const account = (kind: "quiet" | "loaded", t0: number, cpu0: number) => {
      const t1 = performance.now();
      const rate = progress(stdout, t0, t1);
      (kind === "quiet" ? quiet : loaded).push(rate);
      perCpu[kind].spins += rate * (t1 - t0) / 1000;
      perCpu[kind].ms += vcpuCpuMs(pid) - cpu0;
    };
    let requests = 0;
    const open: AsyncGenerator<Record<string, unknown>>[] = [];
    for (let i = 0; i < 4; i++) {
      let t0 = performance.now();
      let cpu0 = vcpuCpuMs(pid);
      await sleep(800);
      account("quiet", t0, cpu0);
      t0 = performance.now();
      cpu0 = vcpuCpuMs(pid);
      const until = t0 + 800;
      while (performance.now() < until) {
        const next = performance.now() + 250;
        const its = await round();
        requests += 100;
        // Keep the last round's streams; end the others.
        for (const it of open.splice(0)) await it.return(undefined);
        open.push(...its);
        await sleep(Math.max(0, next - performance.now()));
      }
      account("loaded", t0, cpu0);
    }
    // Every open stream sees a pause and a resume, in order.
    equal((await apiRequest(sock, "POST", "/v1/actions", { action: "pause" })).status, 200);
    equal((await apiRequest(sock, "POST", "/v1/actions", { action: "resume" })).status, 200);
    const seenBy = await Promise.all(open.map(async (it) => {
      const got: string[] = [];
      for await (const e of it) {
        if (e.type === "state") got.push(`${e.from}→${e.to}`);
        if (got.length === 2) break;
      }
      return got;
    }));
    for (const got of seenBy) deepEqual(got, ["running→paused", "paused→running"]);
    const wall = median(loaded) / median(quiet);
    const q = perCpu.quiet.spins / perCpu.quiet.ms;
    const l = perCpu.loaded.spins / perCpu.loaded.ms;
    console.log(
      `${requests} requests in bursts of 100; guest progress (spins/s) quiet ${
        quiet.map((x) => x.toFixed(0)).join(" ")
      }, loaded ${loaded.map((x) => x.toFixed(0)).join(" ")}: median ratio ${wall.toFixed(3)}; ` +
        `per vCPU CPU-second quiet ${(q * 1000).toFixed(0)}, loaded ${(l * 1000).toFixed(0)}: ` +
        `ratio ${(l / q).toFixed(3)}`,
    );
    ok(requests >= 400, `${requests} requests`);
    // What the server costs the vCPU itself. Loose: even per CPU-second, a busy neighbour
    // on this shared host moves single runs by ~10%. The benchmark (interleaved, medians
    // and bests) measures the real figure: a few percent.
    // Inside the nested test bed the emulator runs the bed's vCPUs, and so the server and
    // the guest, on one host thread (single-threaded TCG): there the server's work is the
    // guest's lost time by construction (measured ~0.26), and the test asks only that the
    // guest goes on under load.
    const bound = Deno.env.get("VMDESC_IN_BED") === "1" ? 0.05 : 0.75;
    ok(
      l / q > bound,
      `the guest kept ${(l / q * 100).toFixed(0)}% of its progress per CPU-second`,
    );
  },
);

test(
  "slow clients: silent, half-headed and trickling clients hold nothing up; a slow body is 408",
  async (sock, stdout) => {
    const enc = new TextEncoder();
    // What one request costs with nobody in the way (curl's own start included, which takes
    // a good part of a second under an emulator): the bound below is relative to it.
    let alone = 0;
    for (let i = 0; i < 3; i++) {
      const a = performance.now();
      equal((await curl(sock, "GET", "/v1/machine")).status, 200);
      alone = Math.max(alone, performance.now() - a);
    }
    const bound = 1000 + 2 * alone;
    const silent: Deno.UnixConn[] = [];
    for (let i = 0; i < 100; i++) {
      silent.push(
        await Deno.connect({ transport: "unix", path: sock }),
      );
    }
    const halfHeaded: Deno.UnixConn[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await Deno.connect({ transport: "unix", path: sock });
      await c.write(enc.encode("GET /v1/machine HTTP/1.1\r\nHost: x\r\n"));
      halfHeaded.push(c);
    }
    // A body promised, then sent one byte every 200 ms.
    const trickle = await Deno.connect({ transport: "unix", path: sock });
    await trickle.write(
      enc.encode("POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"),
    );
    const trickling = (async () => {
      for (let i = 0; i < 100; i++) {
        await sleep(200);
        try {
          await trickle.write(enc.encode(" "));
        } catch {
          return; // the server answered and closed
        }
      }
    })();
    const answer = (async () => {
      const buf = new Uint8Array(4096);
      let text = "";
      for (;;) {
        const n = await trickle.read(buf).catch(() => null);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
        if (text.includes("\r\n\r\n") && text.includes("}\n")) break;
      }
      return text;
    })();
    // Meanwhile: others are answered at once, and the guest goes on.
    const t0 = performance.now();
    const ticks0 = stdout.ticks().length;
    for (let i = 0; i < 20; i++) {
      const a = performance.now();
      equal((await curl(sock, "GET", "/v1/machine")).status, 200);
      const took = performance.now() - a;
      ok(took < bound, `answered in ${took.toFixed(0)} ms (alone: ${alone.toFixed(0)} ms)`);
      await sleep(50);
    }
    ok(stdout.ticks().length > ticks0 + 50, "the guest printed on");
    const text = await answer;
    const took = performance.now() - t0;
    const [head, body] = text.split("\r\n\r\n");
    const status = Number(head.split(" ")[1]);
    equal(status, 408, text);
    checkAnswer({
      method: "POST",
      path: "/v1/actions",
      status,
      contentType: /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? null,
      text: body,
    });
    ok(took >= BODY_TIMEOUT_MS - 500, `408 after the body's time was up (${took.toFixed(0)} ms)`);
    await trickling;
    trickle.close();
    for (const c of [...silent, ...halfHeaded]) c.close();
    equal((await curl(sock, "GET", "/v1/machine")).status, 200);
  },
);
