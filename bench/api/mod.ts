/**
 * bench/api: what serving the control API costs the guest, and which thread should serve
 * it. The ticker guest (examples/guests/ticker.c) reports its progress, the rounds of its
 * wait loop (`spins`), every 5 ms; the benchmark turns that into rounds per second over
 * 1 s windows, interleaved:
 *
 * - quiet: nobody asks anything;
 * - bursts: every 250 ms, 100 concurrent requests (50 live stats, 50 event streams that
 *   read their opening line and close);
 * - flood: such rounds back to back, as fast as they are answered.
 *
 * for three machines: the vCPU in a worker and the server on the machine's thread (what
 * `vmdesc boot --api-sock` does: "worker"), the vCPU on the caller's thread with the
 * server beside it ("caller": that thread's event loop turns only every 100 ms), and no
 * API at all (`vmdesc boot` without --api-sock: "no-api", quiet only). All three run at
 * once and take turns: the one being measured is let go (SIGCONT), the others are
 * stopped (SIGSTOP), so a drift in the host's load hits every machine and every load
 * alike. Also the answer latency (p50, p99), the CPU time of each process's threads
 * (main, vCPU worker, others), and the guest's progress per CPU-second its vCPU thread got:
 * on a host with two cores, a client flooding the server takes CPU the vCPU would have
 * had, which shows in spins per second but not in spins per CPU-second. Writes
 * bench/results/api.json.
 *
 *   deno task bench api [-- --rounds N]
 */
import { buildGuests } from "../../examples/guests/build.ts";
import { apiEvents, apiRequest } from "../../runtime/api/client.ts";
import { median } from "../stats.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const args = Deno.args;
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ROUNDS = opt("rounds", 6);
const WINDOW_MS = 1000;

type Mode = "worker" | "caller";
type Load = "quiet" | "bursts" | "flood";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};

/** A running ticker machine serving the API, and its progress as lines arrive. */
async function start(mode: Mode, socket: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}bench/api/serve.ts`, mode, socket],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const ticks: { wall: number; spins: number }[] = [];
  (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const wall = performance.now();
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const l of parts) {
        const m = / spins (\d+)$/.exec(l);
        if (m) ticks.push({ wall, spins: Number(m[1]) });
      }
    }
  })();
  const errs = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  while (!err.includes("ready")) {
    const { value, done } = await errs.read();
    if (done) throw new Error(`serve.ts ${mode} ended: ${err}`);
    err += value;
  }
  errs.releaseLock();
  child.stderr.cancel().catch(() => {});
  await sleep(500);
  return {
    child,
    progress(from: number, to: number) {
      const spins = ticks.filter((t) => t.wall >= from && t.wall < to).reduce(
        (n, t) => n + t.spins,
        0,
      );
      return spins / ((to - from) / 1000);
    },
  };
}

/** CPU time (ms) of each thread of `pid`, by thread name. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const tick = 10; // USER_HZ = 100
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const name = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/comm`).trim();
      const key = name.startsWith("worker-") ? "worker" : t.name === String(pid) ? "main" : "other";
      out.set(key, (out.get(key) ?? 0) + (Number(fields[11]) + Number(fields[12])) * tick);
    } catch { /* gone */ }
  }
  return out;
}

async function round100(socket: string, lat: number[], errors: { n: number }) {
  const one = async (f: () => Promise<void>) => {
    const t = performance.now();
    try {
      await f();
      lat.push(performance.now() - t);
    } catch {
      errors.n++;
    }
  };
  await Promise.all([
    ...Array.from({ length: 50 }, () =>
      one(async () => {
        const r = await apiRequest(socket, "GET", "/v1/machine/stats", undefined, 5000);
        if (r.status !== 200) throw new Error(String(r.status));
      })),
    ...Array.from({ length: 50 }, () =>
      one(async () => {
        const it = apiEvents(socket);
        const first = await Promise.race([it.next(), sleep(5000).then(() => null)]);
        await it.return(undefined);
        if (!first || first.done) throw new Error("no opening line");
      })),
  ]);
}

async function window(socket: string, load: Load, lat: number[], errors: { n: number }) {
  const end = performance.now() + WINDOW_MS;
  if (load === "quiet") await sleep(WINDOW_MS);
  else if (load === "bursts") {
    while (performance.now() < end) {
      const next = performance.now() + 250;
      await round100(socket, lat, errors);
      await sleep(Math.max(0, next - performance.now()));
    }
  } else {
    while (performance.now() < end) await round100(socket, lat, errors);
  }
}

await buildGuests(["ticker"]);
const dir = await Deno.makeTempDir({ prefix: "vmdesc-bench-api-" });
const results: Record<string, unknown> = {};
const MACHINES: { name: string; mode: Mode; api: boolean; loads: Load[] }[] = [
  { name: "worker", mode: "worker", api: true, loads: ["quiet", "bursts", "flood"] },
  { name: "caller", mode: "caller", api: true, loads: ["quiet", "bursts"] },
  { name: "no-api", mode: "caller", api: false, loads: ["quiet"] },
];
try {
  const running: {
    spec: typeof MACHINES[number];
    socket: string;
    m: Awaited<ReturnType<typeof start>>;
    windows: Record<Load, number[]>;
    lat: Record<Load, number[]>;
    errors: { n: number };
    cpu: Map<string, number>;
    /** Wait-loop rounds counted in each load's windows, all told. */
    spins: Map<Load, number>;
  }[] = [];
  for (const spec of MACHINES) {
    const socket = spec.api ? `${dir}/${spec.name}.sock` : "none";
    const m = await start(spec.mode, socket);
    m.child.kill("SIGSTOP");
    running.push({
      spec,
      socket,
      m,
      windows: Object.fromEntries(spec.loads.map((l) => [l, [] as number[]])) as Record<
        Load,
        number[]
      >,
      lat: Object.fromEntries(spec.loads.map((l) => [l, [] as number[]])) as Record<Load, number[]>,
      errors: { n: 0 },
      cpu: new Map<string, number>(),
      spins: new Map<Load, number>(),
    });
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const load of ["quiet", "bursts", "flood"] as Load[]) {
      for (const x of running) {
        if (!x.spec.loads.includes(load)) continue;
        x.m.child.kill("SIGCONT");
        await sleep(150);
        const cpu0 = threadCpu(x.m.child.pid);
        const t0 = performance.now();
        await window(x.socket, load, x.lat[load], x.errors);
        const t1 = performance.now();
        const rate = x.m.progress(t0, t1);
        x.windows[load].push(rate);
        x.spins.set(load, (x.spins.get(load) ?? 0) + rate * (t1 - t0) / 1000);
        for (const [k, v] of threadCpu(x.m.child.pid)) {
          x.cpu.set(`${load} ${k}`, (x.cpu.get(`${load} ${k}`) ?? 0) + v - (cpu0.get(k) ?? 0));
        }
        x.m.child.kill("SIGSTOP");
      }
    }
  }
  const quietOf = (name: string) => running.find((x) => x.spec.name === name)!.windows.quiet;
  for (const x of running) {
    x.m.child.kill("SIGCONT");
    x.m.child.kill("SIGINT");
    await x.m.child.status;
    const quiet = x.windows.quiet;
    const summary = Object.fromEntries(x.spec.loads.map((load) => [load, {
      spins_per_s: {
        median: Math.round(median(x.windows[load])),
        best: Math.round(Math.max(...x.windows[load])),
      },
      vs_own_quiet: {
        median: +(median(x.windows[load]) / median(quiet)).toFixed(3),
        best: +(Math.max(...x.windows[load]) / Math.max(...quiet)).toFixed(3),
      },
      // Progress per second of CPU the vCPU's thread got: what the server costs the vCPU
      // itself, apart from CPU time other threads (the client's, the host's) take from it.
      spins_per_vcpu_cpu_s: Math.round(
        (x.spins.get(load) ?? 0) /
          ((x.cpu.get(`${load} ${x.spec.mode === "worker" ? "worker" : "main"}`) ?? 1) / 1000),
      ),
      requests: x.lat[load].length,
      latency_ms: {
        p50: +pct(x.lat[load], 0.5).toFixed(2),
        p99: +pct(x.lat[load], 0.99).toFixed(2),
      },
    }]));
    const vsNoApi = {
      median: +(median(quiet) / median(quietOf("no-api"))).toFixed(3),
      best: +(Math.max(...quiet) / Math.max(...quietOf("no-api"))).toFixed(3),
    };
    const cpu = Object.fromEntries(x.cpu);
    results[x.spec.name] = {
      ...summary,
      quiet_vs_no_api: vsNoApi,
      failed_requests: x.errors.n,
      cpu_ms_by_load_and_thread: cpu,
      windows: x.windows,
    };
    console.log(
      `${x.spec.name}: ${JSON.stringify(summary)} quiet vs no-api ${JSON.stringify(vsNoApi)} ` +
        `failed ${x.errors.n} cpu ${JSON.stringify(cpu)}`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
const out = {
  date: new Date().toISOString(),
  rounds: ROUNDS,
  window_ms: WINDOW_MS,
  host_cpus: navigator.hardwareConcurrency,
  ...results,
};
await Deno.writeTextFile(`${ROOT}bench/results/api.json`, JSON.stringify(out, null, 2) + "\n");
console.log("wrote bench/results/api.json");
