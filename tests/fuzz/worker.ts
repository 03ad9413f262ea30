/// <reference lib="deno.worker" />
/**
 * Fuzz worker: compiles, renders and formats a range of mutated cases and reports what
 * broke, and what took longer than the time limit (every case is at most 64 KB and must
 * end within `limitMs` in process: compile, render, format). Runs in a Worker so the
 * parent can kill it when a case hangs; the index of the case in progress is kept in
 * shared memory for the parent's watchdog.
 */
import { compile, format } from "../../lang/mod.ts";
import { resolvePath } from "../../plan/paths.ts";
import { jsonReport, loadWidths, renderDiagnostics } from "../../lang/diagnostics/render.ts";
import { isKnownCode } from "../../plan/codes.ts";
import { CASE_LIMIT_MS, makeCase } from "./mutate.ts";
import { caseClock } from "./clock.ts";
import { emptyResult } from "./result.ts";
import type { Diagnostic } from "../../lang/diagnostics/types.ts";

// Mutants carry any character: render them with every width known.
await loadWidths();

export interface WorkerRequest {
  seed: number;
  from: number;
  to: number;
  paths: string[];
  texts: string[];
  preferred: number;
  /** Int32Array over it: [0] = index of the case being run. */
  progress: SharedArrayBuffer;
  /** A case taking longer than this (best of three runs) is a failure; default 50 ms. */
  limitMs?: number;
}

/**
 * A case measured above this is run twice more and its best time kept: a garbage
 * collection or a busy CPU makes one run slow, a slow input makes every run slow.
 */
const REMEASURE_MS = 10;

export interface Failure {
  index: number;
  kind: "exception" | "invariant" | "slow";
  message: string;
  mutations: string[];
  source: string;
}

export interface WorkerResult {
  cases: number;
  withPlans: number;
  withErrors: number;
  clean: number;
  codes: Record<string, number>;
  failures: Failure[];
  slowest: { index: number; ms: number }[];
  /** What case times were measured with (see clock.ts). */
  clock?: string;
}

function checkDiagnostics(diags: Diagnostic[], files: Map<string, string>): string | null {
  if (!Array.isArray(diags)) return "diagnostics is not an array";
  for (const d of diags) {
    if (!isKnownCode(d.code)) return `unknown code ${d.code}`;
    if (!["error", "warning", "info"].includes(d.severity)) return `bad severity ${d.severity}`;
    if (typeof d.message !== "string" || !d.message) return `${d.code}: empty message`;
    // Every error tells the user how to fix it.
    if (d.severity === "error" && !d.hint) return `${d.code}: error without a hint: ${d.message}`;
    for (const s of [d.span, ...(d.labels ?? []).map((l) => l.span)]) {
      if (s === null) continue;
      const text = files.get(s.file);
      if (text === undefined) continue; // e.g. a boot payload path
      if (
        !(Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start &&
          s.start <= s.end && s.end <= text.length)
      ) {
        return `${d.code}: span ${s.start}..${s.end} outside ${s.file} (${text.length} chars)`;
      }
    }
  }
  return null;
}

function checkNumbers(value: unknown, path: string): string | null {
  if (typeof value === "bigint") return `${path} is a bigint`;
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    return `${path} = ${value} is not a safe integer`;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const r = checkNumbers(value[i], `${path}[${i}]`);
      if (r) return r;
    }
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const r = checkNumbers(v, `${path}.${k}`);
      if (r) return r;
    }
  }
  return null;
}

export function runCases(req: WorkerRequest): WorkerResult {
  const progress = new Int32Array(req.progress);
  const corpus = req.texts;
  const limitMs = req.limitMs ?? CASE_LIMIT_MS;
  const result = emptyResult();
  const clock = caseClock();
  result.clock = clock.kind;
  for (let i = req.from; i < req.to; i++) {
    Atomics.store(progress, 0, i);
    const c = makeCase(corpus, req.seed, i, req.preferred);
    const file = req.paths[c.source];
    const files = new Map<string, string>(req.paths.map((p, k) => [p, corpus[k]]));
    files.set(file, c.text);
    const fail = (kind: Failure["kind"], message: string) =>
      result.failures.push({ index: i, kind, message, mutations: c.mutations, source: file });
    let t0 = clock.now();
    runCase(c.text, file, files, result, fail);
    let ms = clock.now() - t0;
    for (let again = 0; again < 2 && ms > REMEASURE_MS; again++) {
      t0 = clock.now();
      runCase(c.text, file, files, null, () => {});
      ms = Math.min(ms, clock.now() - t0);
    }
    if (ms > limitMs) {
      fail("slow", `took ${ms.toFixed(0)} ms (best of 3) for ${c.text.length} characters`);
    }
    if (result.slowest.length < 5 || ms > result.slowest[result.slowest.length - 1].ms) {
      result.slowest.push({ index: i, ms });
      result.slowest.sort((a, b) => b.ms - a.ms);
      result.slowest.length = Math.min(result.slowest.length, 5);
    }
    result.cases++;
  }
  Atomics.store(progress, 0, req.to);
  return result;
}

/**
 * One case: compile, check the invariants, render (text and JSON), format twice. `result`
 * (null when the case is only timed again) collects the outcome.
 */
function runCase(
  text: string,
  file: string,
  files: Map<string, string>,
  result: WorkerResult | null,
  fail: (kind: Failure["kind"], message: string) => void,
) {
  const host = {
    readFile: (p: string) => files.get(p),
    // Boot payloads "exist" so clean mutants are possible (W0006 has its own case).
    fileExists: (p: string) => files.has(p) || !p.endsWith(".vmdesc"),
    resolve: resolvePath,
  };
  try {
    const r = compile(text, { file, host });
    const problem = checkDiagnostics(r.diagnostics, files) ??
      (r.plans instanceof Map ? null : "plans is not a Map") ??
      (r.diagnostics.length || r.plans.size ? null : "neither diagnostics nor Plans");
    if (problem) fail("invariant", problem);
    const errors = r.diagnostics.filter((d) => d.severity === "error").length;
    if (errors === 0 && r.plans.size === 0) fail("invariant", "no errors but no Plan either");
    for (const [name, plan] of r.plans) {
      const bad = checkNumbers(plan, `plan ${name}`);
      if (bad) fail("invariant", bad);
      JSON.stringify(plan);
    }
    if (result) {
      for (const d of r.diagnostics) result.codes[d.code] = (result.codes[d.code] ?? 0) + 1;
      if (r.plans.size) result.withPlans++;
      if (errors) result.withErrors++;
      if (!r.diagnostics.length) result.clean++;
    }
    // The renderers must cope with whatever spans come out.
    renderDiagnostics(r.diagnostics, (f) => files.get(f), { color: true });
    jsonReport(
      [{ path: file, diagnostics: r.diagnostics, machines: [...r.plans.keys()] }],
      (f) => files.get(f),
    );
    // The formatter: never throws; when it succeeds, formatting again changes nothing.
    const f1 = format(text, file);
    const bad = checkDiagnostics(f1.diagnostics, files);
    if (bad) fail("invariant", `format: ${bad}`);
    if (!f1.diagnostics.some((d) => d.severity === "error")) {
      const f2 = format(f1.text, file);
      if (f2.text !== f1.text) fail("invariant", "format is not idempotent");
    }
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const where = (err.stack ?? "").split("\n").slice(1, 4).map((s) => s.trim()).join(" | ");
    fail("exception", `${err.name}: ${err.message.slice(0, 200)} @ ${where}`);
  }
}

self.onmessage = (e: MessageEvent<WorkerRequest>) => {
  self.postMessage(runCases(e.data));
};
