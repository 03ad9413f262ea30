/**
 * The mutation fuzzer over the examples: `deno task fuzz [--cases N] [--seed S]
 * [--workers W] [--timeout MS]`. Each case is an example (or a diagnostics case file)
 * with 1..3 seeded mutations; it must end in diagnostics or Plans: no exception, no
 * hang, spans inside their file, a formatter that is idempotent. Failing inputs are
 * saved under .cache/fuzz/ (gitignored) to be turned into regression cases.
 */
import type { Failure, WorkerRequest, WorkerResult } from "./worker.ts";
import { CASE_LIMIT_MS, makeCase } from "./mutate.ts";
import { emptyResult } from "./result.ts";

const root = new URL("../../", import.meta.url);

export interface Corpus {
  paths: string[];
  texts: string[];
  /** How many leading entries are examples (preferred as mutation sources). */
  preferred: number;
}

/** The examples and the diagnostics case files, by repository-relative path. */
export async function loadCorpus(): Promise<Corpus> {
  const paths: string[] = [];
  const texts: string[] = [];
  let preferred = 0;
  for (const dir of ["examples", "tests/diagnostics/cases"]) {
    if (dir !== "examples") preferred = paths.length;
    let entries: string[] = [];
    try {
      for await (const e of Deno.readDir(new URL(dir + "/", root))) {
        if (e.isFile && e.name.endsWith(".vmdesc")) entries.push(e.name);
      }
    } catch { /* folder not there yet */ }
    entries = entries.sort();
    for (const name of entries) {
      const text = await Deno.readTextFile(new URL(`${dir}/${name}`, root));
      // Big seeds (the 510-line E0209 case) make every mutant slow to re-parse after a
      // syntax error; size and scaling are bench/lang's business, not the fuzzer's.
      if (text.length > 8192) continue;
      paths.push(`${dir}/${name}`);
      texts.push(text);
    }
  }
  return { paths, texts, preferred };
}

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** A case running longer than this is a hang: its worker is killed (default 10 s). */
  timeoutMs?: number;
  /** A case taking longer than this in process (best of 3) is a failure (default 50 ms). */
  limitMs?: number;
  workers?: number;
  corpus?: Corpus;
  onProgress?: (done: number) => void;
}

export interface FuzzSummary extends WorkerResult {
  seed: number;
  hangs: number[];
  seconds: number;
}

/** Runs cases [0, cases) of `seed` in worker(s) with a watchdog; never throws on a bad case. */
export async function fuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const corpus = options.corpus ?? (await loadCorpus());
  if (!corpus.paths.length) throw new Error("fuzz: empty corpus (no examples/*.vmdesc)");
  const timeoutMs = options.timeoutMs ?? 10_000;
  const workers = Math.max(1, Math.min(options.workers ?? 1, options.cases));
  const t0 = performance.now();
  const total: FuzzSummary = { seed: options.seed, ...emptyResult(), hangs: [], seconds: 0 };
  const merge = (r: WorkerResult) => {
    total.cases += r.cases;
    total.withPlans += r.withPlans;
    total.withErrors += r.withErrors;
    total.clean += r.clean;
    for (const [k, v] of Object.entries(r.codes)) total.codes[k] = (total.codes[k] ?? 0) + v;
    total.failures.push(...r.failures);
    total.slowest = [...total.slowest, ...r.slowest].sort((a, b) => b.ms - a.ms).slice(0, 5);
    total.clock ??= r.clock;
  };
  const per = Math.ceil(options.cases / workers);
  const progressOf: Int32Array[] = [];
  const runRange = async (from: number, to: number, slot: number): Promise<void> => {
    while (from < to) {
      const sab = new SharedArrayBuffer(4);
      const progress = new Int32Array(sab);
      // -1 until the worker has loaded (type-checking and module loading can take seconds
      // on a busy machine); the hang watchdog only runs once cases do.
      progress[0] = -1;
      progressOf[slot] = progress;
      const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      const req: WorkerRequest = {
        seed: options.seed,
        from,
        to,
        ...corpus,
        progress: sab,
        limitMs: options.limitMs,
      };
      const outcome = await new Promise<
        { done: WorkerResult } | { hung: number } | { crashed: string }
      >(
        (resolve) => {
          let last = -1;
          let since = performance.now();
          const timer = setInterval(() => {
            const now = Atomics.load(progress, 0);
            if (now !== last) {
              last = now;
              since = performance.now();
            } else if (now >= 0 && performance.now() - since > timeoutMs) {
              clearInterval(timer);
              resolve({ hung: now });
            } else if (now < 0 && performance.now() - since > 120_000) {
              clearInterval(timer);
              resolve({ crashed: "the worker did not start within 120 s" });
            }
          }, 100);
          w.onmessage = (e: MessageEvent<WorkerResult>) => {
            clearInterval(timer);
            resolve({ done: e.data });
          };
          w.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            clearInterval(timer);
            resolve({ crashed: e.message });
          };
          w.postMessage(req);
        },
      );
      w.terminate();
      if ("done" in outcome) {
        merge(outcome.done);
        return;
      }
      // A hang or a crash of the worker itself (stack overflow outside a try, out of memory):
      // record the case and carry on after it.
      const at = "hung" in outcome ? outcome.hung : Math.max(from, Atomics.load(progress, 0));
      const c = makeCase(corpus.texts, options.seed, at, corpus.preferred);
      if ("hung" in outcome) total.hangs.push(at);
      else {
        total.failures.push({
          index: at,
          kind: "exception",
          message: `worker died: ${outcome.crashed}`,
          mutations: c.mutations,
          source: corpus.paths[c.source],
        });
      }
      total.cases += at - from + 1;
      from = at + 1;
    }
  };
  const tick = options.onProgress
    ? setInterval(() => {
      let done = 0;
      progressOf.forEach((p, k) => (done += Math.max(0, Atomics.load(p, 0) - k * per)));
      options.onProgress!(done);
    }, 1000)
    : undefined;
  try {
    await Promise.all(
      Array.from(
        { length: workers },
        (_, k) => runRange(k * per, Math.min(options.cases, (k + 1) * per), k),
      ),
    );
  } finally {
    if (tick !== undefined) clearInterval(tick);
  }
  total.failures.sort((a, b) => a.index - b.index);
  total.seconds = (performance.now() - t0) / 1000;
  return total;
}

/** Writes each failing or hanging input to .cache/fuzz/<seed>-<index>.crash.vmdesc (gitignored). */
export async function saveCrashes(summary: FuzzSummary, corpus: Corpus): Promise<string[]> {
  const indexes = [
    ...new Set([...summary.failures.map((f: Failure) => f.index), ...summary.hangs]),
  ];
  if (!indexes.length) return [];
  const dir = new URL(".cache/fuzz/", root);
  await Deno.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const i of indexes) {
    const c = makeCase(corpus.texts, summary.seed, i, corpus.preferred);
    const name = `.cache/fuzz/${summary.seed}-${i}.crash.vmdesc`;
    await Deno.writeTextFile(new URL(name, root), c.text);
    written.push(name);
  }
  return written;
}

export function describe(s: FuzzSummary): string {
  const lines = [
    `fuzz: seed ${s.seed}, ${s.cases} cases in ${s.seconds.toFixed(1)} s ` +
    `(${(s.cases / Math.max(s.seconds, 1e-9)).toFixed(0)} cases/s)`,
    `  ended with Plans: ${s.withPlans}, with errors: ${s.withErrors}, clean: ${s.clean}`,
    `  exceptions: ${s.failures.filter((f) => f.kind === "exception").length}, ` +
    `invariant violations: ${s.failures.filter((f) => f.kind === "invariant").length}, ` +
    `over the time limit: ${s.failures.filter((f) => f.kind === "slow").length}, ` +
    `hangs: ${s.hangs.length}`,
    `  slowest cases (in process, ${s.clock ?? "wall clock"}, best of 3 when over 10 ms): ${
      s.slowest.map((x) => `#${x.index} ${x.ms.toFixed(1)} ms`).join(", ")
    }`,
    `  codes seen: ${Object.entries(s.codes).sort().map(([k, v]) => `${k}×${v}`).join(" ")}`,
  ];
  const byMessage = new Map<string, Failure[]>();
  for (const f of s.failures) {
    const key = f.kind + ": " + f.message.replace(/\d+/g, "N").slice(0, 160);
    if (!byMessage.has(key)) byMessage.set(key, []);
    byMessage.get(key)!.push(f);
  }
  for (const [key, fs] of byMessage) {
    lines.push(`  ${fs.length}× ${key}`);
    lines.push(
      `      e.g. case #${fs[0].index} (${fs[0].source}; ${fs[0].mutations.join(", ")}): ${
        fs[0].message.slice(0, 300)
      }`,
    );
  }
  for (const h of s.hangs) lines.push(`  hang: case #${h}`);
  return lines.join("\n") + "\n";
}

async function main(args: string[]): Promise<number> {
  const opt = (name: string, def: number) => {
    const i = args.indexOf(`--${name}`);
    const eq = args.find((a) => a.startsWith(`--${name}=`));
    const v = eq ? eq.split("=")[1] : i >= 0 ? args[i + 1] : undefined;
    return v === undefined ? def : Number(v.replace(/_/g, ""));
  };
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      "usage: deno task fuzz [--cases N] [--seed S] [--workers W] [--timeout MS] [--limit MS]\n" +
        "  --limit MS   a case (at most 64 KB) taking longer in process fails (default 50)",
    );
    return 0;
  }
  const cases = opt("cases", 100_000);
  const seed = opt("seed", 1);
  const workers = opt("workers", Math.min(2, navigator.hardwareConcurrency || 1));
  const timeoutMs = opt("timeout", 10_000);
  const limitMs = opt("limit", CASE_LIMIT_MS);
  const corpus = await loadCorpus();
  console.log(
    `fuzz: ${cases} cases, seed ${seed}, ${workers} worker(s), corpus ${corpus.paths.length} files`,
  );
  const s = await fuzz({
    seed,
    cases,
    workers,
    timeoutMs,
    limitMs,
    corpus,
    onProgress: (n) => Deno.stderr.writeSync(new TextEncoder().encode(`\r  ${n} / ${cases}`)),
  });
  Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  console.log(describe(s));
  const saved = await saveCrashes(s, corpus);
  if (saved.length) {
    console.log(`saved ${saved.length} failing inputs:\n  ${saved.slice(0, 20).join("\n  ")}`);
  }
  return s.failures.length || s.hangs.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
