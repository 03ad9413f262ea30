/**
 * One seed of the guest fuzzer (examples/guests/fuzz.c) on one machine of
 * examples/guests/fuzz.vmdesc, through the library API, and the rules it is held to:
 *
 * - vmdesc never throws (createMachine, run, close): any exception is a failure;
 * - the run ends the one way the fuzzer ends it: debug-exit FUZZ_DONE (status 141) after
 *   its `fuzz: done seed=N` line. The fuzzer never writes the ports that end a run (see
 *   fuzz.c), so any other end is a failure, reported by kind: `exception` (the guest took
 *   a CPU exception: its memory was changed behind its back), `timeout`, `triple_fault`,
 *   `reset`, `poweroff`, `halted`, `internal_error`, `fail_entry`, `crash`, `host_error`,
 *   or `debug_exit` with another value;
 * - the read-only image is byte-identical afterwards, and so is its size;
 * - the read-write image keeps its size, its lower half (sectors 0-1023: the fuzzer's
 *   write requests name only sectors 1024-2047 or past the end) and every sector it did
 *   not write; a sector that changed holds only whole records of the fuzzer's source
 *   region (fuzz.c SRC) or zeros (DISCARD / WRITE_ZEROES), so a write that reached the disk
 *   in part, or from anywhere else, shows;
 * - fds, vmdesc's mappings and worker threads are back at their baseline after close().
 */
import { compile, type Plan } from "../../lang/mod.ts";
import { DenoHost } from "../../host/disk_host.ts";
import { createMachine } from "../../runtime/mod.ts";
import { buildGuests, diskImageBytes } from "../../examples/guests/build.ts";
import { leaks, type Resources, resources } from "./resources.ts";

export const MACHINES = ["fuzz_pci", "fuzz_mmio"] as const;
export type FuzzMachine = typeof MACHINES[number];

/** debug_exit values of fuzz.c. */
const FUZZ_DONE = 0x46;
const FUZZ_EXCEPTION = 0x45;
/** Sectors of each image; the fuzzer writes only from WRITE_FLOOR on. */
export const SECTORS = 2048;
const WRITE_FLOOR = 1024;

const VMDESC = decodeURIComponent(
  new URL("../../examples/guests/fuzz.vmdesc", import.meta.url).pathname,
);

export interface SeedResult {
  seed: number;
  ops: number;
  machine: FuzzMachine;
  /** "done", or how the run ended otherwise (see the module comment). */
  outcome: string;
  /** Rules broken: empty when the seed passed. */
  problems: string[];
  /** The fuzzer's own counts from its `fuzz: done` line. */
  counts: Record<string, number>;
  /** Guest faults the virtio devices counted, by kind, summed over devices. */
  faults: Record<string, number>;
  /** What the devices served, summed: chains, reads, writes, interrupts. */
  served: Record<string, number>;
  exits: number;
  warnings: number;
  ms: number;
  /** This process after close(): for the record (the exact counts are held to baseline). */
  after: Resources;
}

const SERVED = [
  "chains",
  "reads",
  "writes",
  "flushes",
  "get_ids",
  "discards",
  "write_zeroes",
  "used_interrupts",
  "config_interrupts",
  "msi",
  "intx_asserts",
  "irq_raises",
  "dma_blocked",
];

const plans = new Map<FuzzMachine, Plan>();

/** The machine's Plan, compiled once per process (a fresh copy each time). */
function planFor(machine: FuzzMachine): Plan {
  let plan = plans.get(machine);
  if (!plan) {
    const host = new DenoHost();
    const r = compile(host.readFile(VMDESC)!, { file: VMDESC, host, machine });
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    if (errors.length) throw new Error(errors.map((d) => `${d.code} ${d.message}`).join("; "));
    plan = r.plans.get(machine)!;
    plans.set(machine, plan);
  }
  return structuredClone(plan);
}

export async function buildFuzzGuest(): Promise<void> {
  await buildGuests(["fuzz"]);
}

/** Checks a sector the fuzzer wrote: whole records of its SRC region, or zeros. */
function sectorProblem(s: Uint8Array): string | null {
  const v = new DataView(s.buffer, s.byteOffset, s.byteLength);
  if (s.every((b) => b === 0)) return null;
  const types = new Set([0, 1, 4, 8, 11, 13, 0x7fffffff]);
  for (let o = 0; o < 512; o += 16) {
    const [type, reserved, lo, hi] = [0, 4, 8, 12].map((k) => v.getUint32(o + k, true));
    const known = reserved === 1 && types.has(type);
    const unknown = reserved === 0 && type >= 1024 && type < 2048;
    const sector = (hi === 0 && lo >= 1024 && lo < 2048) || (lo & 0x800) !== 0;
    // fuzz.c make_record: an unknown type may also be a DISCARD / WRITE_ZEROES segment that
    // fits (sector `type`, `lo` sectors up to the end, flags 0 or unmap).
    const segment = unknown && hi <= 1 && lo >= 1 && type + lo <= 2048;
    if (!(known || unknown) || !(sector || segment)) {
      return `bytes ${o}..${o + 15} are not a record of the fuzzer's source region`;
    }
  }
  return null;
}

export function checkImages(
  ro: string,
  rw: string,
  original: Uint8Array,
  problems: string[],
): void {
  const roNow = Deno.readFileSync(ro);
  if (roNow.length !== original.length) {
    problems.push(`read-only image size ${original.length} → ${roNow.length}`);
  } else {
    const at = roNow.findIndex((b, i) => b !== original[i]);
    if (at >= 0) problems.push(`read-only image changed at byte ${at} (sector ${at >> 9})`);
  }
  const rwNow = Deno.readFileSync(rw);
  if (rwNow.length !== original.length) {
    problems.push(`read-write image size ${original.length} → ${rwNow.length}`);
    return;
  }
  for (let s = 0; s < SECTORS; s++) {
    const a = original.subarray(s * 512, s * 512 + 512);
    const b = rwNow.subarray(s * 512, s * 512 + 512);
    if (a.every((x, i) => x === b[i])) continue;
    if (s < WRITE_FLOOR) {
      problems.push(`read-write image: sector ${s} changed (the fuzzer writes only from 1024)`);
      return;
    }
    const why = sectorProblem(b);
    if (why) {
      problems.push(`read-write image: sector ${s}: ${why}`);
      return;
    }
  }
}

function parseCounts(line: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=(\d+)/g)) counts[m[1]] = Number(m[2]);
  return counts;
}

/**
 * Runs one seed and checks every rule. `baseline` is the resource count the run must
 * return to (taken by the caller after a warm-up run).
 */
export async function runSeed(opts: {
  seed: number;
  ops: number;
  machine: FuzzMachine;
  baseline?: Resources;
  timeout?: number;
  /** trace=K for the guest: it prints each operation's number from K on. */
  trace?: number;
}): Promise<SeedResult> {
  const { seed, ops, machine } = opts;
  const t0 = performance.now();
  const problems: string[] = [];
  const original = diskImageBytes(SECTORS * 512);
  const ro = Deno.makeTempFileSync({ prefix: "vmdesc-fuzz-ro-", suffix: ".img" });
  const rw = Deno.makeTempFileSync({ prefix: "vmdesc-fuzz-rw-", suffix: ".img" });
  const result: SeedResult = {
    seed,
    ops,
    machine,
    outcome: "threw",
    problems,
    counts: {},
    faults: {},
    served: {},
    exits: 0,
    warnings: 0,
    ms: 0,
    after: resources(),
  };
  try {
    Deno.writeFileSync(ro, original);
    Deno.writeFileSync(rw, original);
    const plan = planFor(machine);
    const trace = opts.trace !== undefined ? ` trace=${opts.trace}` : "";
    plan.boot.cmdline = `seed=${seed} ops=${ops}${trace} ${plan.boot.cmdline}`;
    for (const entry of [...plan.devices, ...plan.pci]) {
      const b = entry.virtio?.backing;
      if (b?.kind === "file") b.path = b.readonly ? ro : rw;
    }
    const chunks: string[] = [];
    const dec = new TextDecoder();
    try {
      const m = await createMachine(plan, {
        serial: (bytes) => chunks.push(dec.decode(bytes, { stream: true })),
        warn: () => result.warnings++,
        fromCompiler: true,
      });
      try {
        const r = await m.run({ timeout: opts.timeout ?? 120 });
        const output = chunks.join("");
        const done = new RegExp(`fuzz: done seed=${seed} (.*)`).exec(output);
        result.exits = r.stats.exits_total;
        for (const d of r.stats.devices) {
          if (!d.model || !("chains" in d.model)) continue; // the virtio devices only
          for (const [k, v] of Object.entries(d.model)) {
            if (k.startsWith("fault_")) {
              result.faults[k.slice(6)] = (result.faults[k.slice(6)] ?? 0) + v;
            }
            if (SERVED.includes(k)) result.served[k] = (result.served[k] ?? 0) + v;
          }
        }
        if (r.reason === "debug_exit" && r.debugValue === FUZZ_DONE && done) {
          result.outcome = "done";
          result.counts = parseCounts(done[1]);
        } else {
          result.outcome = r.reason === "debug_exit"
            ? r.debugValue === FUZZ_EXCEPTION ? "exception" : `debug_exit ${r.debugValue}`
            : r.reason;
          const exc = /fuzz: EXCEPTION .*/.exec(output)?.[0];
          const tail = output.trimEnd().split("\n").slice(-6).join("\n    ");
          problems.push(
            `the run ended with ${result.outcome} (${r.message})${exc ? `: ${exc}` : ""}` +
              (r.dump ? `\n${r.dump}` : "") + `\n  last output:\n    ${tail}`,
          );
        }
      } finally {
        m.close();
      }
    } catch (e) {
      result.outcome = "threw";
      problems.push(`vmdesc threw: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    }
    checkImages(ro, rw, original, problems);
  } finally {
    Deno.removeSync(ro);
    Deno.removeSync(rw);
  }
  result.after = resources();
  if (opts.baseline) {
    const lost = leaks(opts.baseline, result.after);
    if (lost.length) problems.push(`not back to baseline after close(): ${lost.join(", ")}`);
  }
  result.ms = Math.round(performance.now() - t0);
  return result;
}

/** Where failing seeds are kept; each file is replayed by fuzz_guest_test.ts. */
export const REGRESSIONS = decodeURIComponent(
  new URL("./regressions/", import.meta.url).pathname,
);

export interface Regression {
  seed: number;
  ops: number;
  machine: FuzzMachine;
  /** What it broke when it was found, and what fixed it. */
  found: string;
}

export function saveRegression(r: SeedResult): string {
  Deno.mkdirSync(REGRESSIONS, { recursive: true });
  const path = `${REGRESSIONS}${r.machine}-${r.seed}.json`;
  const entry: Regression = {
    seed: r.seed,
    ops: r.ops,
    machine: r.machine,
    found: r.problems.join("\n"),
  };
  Deno.writeTextFileSync(path, JSON.stringify(entry, null, 2) + "\n");
  return path;
}

export function loadRegressions(): Regression[] {
  const out: Regression[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(REGRESSIONS)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (
    const e of entries.filter((e) => e.name.endsWith(".json")).sort((a, b) =>
      a.name < b.name ? -1 : 1
    )
  ) {
    out.push(JSON.parse(Deno.readTextFileSync(REGRESSIONS + e.name)));
  }
  return out;
}

/** Totals over many seeds, for the report. */
export interface Tally {
  seeds: number;
  ops: number;
  failed: number;
  outcomes: Record<string, number>;
  faults: Record<string, number>;
  counts: Record<string, number>;
  /** What the virtio devices served, summed (chains, reads, writes, interrupts, ...). */
  served: Record<string, number>;
  exits: number;
  ms: number;
  /** Ranges over the seeds, after each close(): every thread, every mapping, RSS. */
  after: Record<"threads" | "mapsTotal" | "rssKiB" | "fds", { min: number; max: number }>;
}

export function tally(results: SeedResult[]): Tally {
  const range = (k: "threads" | "mapsTotal" | "rssKiB" | "fds") => ({
    min: Math.min(...results.map((r) => r.after[k])),
    max: Math.max(...results.map((r) => r.after[k])),
  });
  const t: Tally = {
    seeds: 0,
    ops: 0,
    failed: 0,
    outcomes: {},
    faults: {},
    counts: {},
    served: {},
    exits: 0,
    ms: 0,
    after: {
      threads: range("threads"),
      mapsTotal: range("mapsTotal"),
      rssKiB: range("rssKiB"),
      fds: range("fds"),
    },
  };
  for (const r of results) {
    t.seeds++;
    t.ops += r.ops;
    if (r.problems.length) t.failed++;
    t.outcomes[r.outcome] = (t.outcomes[r.outcome] ?? 0) + 1;
    for (const [k, v] of Object.entries(r.faults)) t.faults[k] = (t.faults[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.counts)) t.counts[k] = (t.counts[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.served)) t.served[k] = (t.served[k] ?? 0) + v;
    t.exits += r.exits;
    t.ms += r.ms;
  }
  return t;
}
