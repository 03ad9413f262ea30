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
 * for two ways of placing the server: the vCPU in a worker and the server on the
 * machine's thread (what `vmdesc boot --api-sock` does), and the vCPU on the caller's
 * thread with the server beside it (its event loop turns every 100 ms). Also the answer
 * latency (p50, p99) and the CPU time of the server process's threads. Both machines run
 * at once side by side? No: one at a time, windows alternating, so host load drifts hit
 * both alike. Writes bench/results/api.json.
 *
 *   deno task bench api [-- --rounds N]
 */
import { buildGuests } from "../../examples/guests/build.ts";
import { apiEvents, apiRequest } from "../../runtime/api/client.ts";

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
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
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
try {
  for (const mode of ["worker", "caller"] as Mode[]) {
    const socket = `${dir}/${mode}.sock`;
    const m = await start(mode, socket);
    const windows: Record<Load, number[]> = { quiet: [], bursts: [], flood: [] };
    const lat: Record<Load, number[]> = { quiet: [], bursts: [], flood: [] };
    const errors = { n: 0 };
    const cpu0 = threadCpu(m.child.pid);
    const loads: Load[] = mode === "caller" ? ["quiet", "bursts"] : ["quiet", "bursts", "flood"];
    const rounds = mode === "caller" ? Math.min(ROUNDS, 2) : ROUNDS;
    for (let r = 0; r < rounds; r++) {
      for (const load of loads) {
        const t0 = performance.now();
        await window(socket, load, lat[load], errors);
        windows[load].push(m.progress(t0, performance.now()));
      }
    }
    const cpu1 = threadCpu(m.child.pid);
    m.child.kill("SIGINT");
    await m.child.status;
    const quiet = median(windows.quiet);
    const summary = Object.fromEntries(loads.map((load) => [load, {
      spins_per_s: {
        median: Math.round(median(windows[load])),
        best: Math.round(Math.max(...windows[load])),
      },
      vs_quiet: {
        median: +(median(windows[load]) / quiet).toFixed(3),
        best: +(Math.max(...windows[load]) / Math.max(...windows.quiet)).toFixed(3),
      },
      requests: lat[load].length,
      latency_ms: { p50: +pct(lat[load], 0.5).toFixed(2), p99: +pct(lat[load], 0.99).toFixed(2) },
    }]));
    const cpu = Object.fromEntries([...cpu1].map(([k, v]) => [k, v - (cpu0.get(k) ?? 0)]));
    results[mode] = { ...summary, failed_requests: errors.n, cpu_ms_by_thread: cpu, windows };
    console.log(
      `${mode}: ${JSON.stringify(summary)} failed ${errors.n} cpu ${JSON.stringify(cpu)}`,
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
