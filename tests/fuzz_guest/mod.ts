/**
 * `deno task fuzz-guest`: the seeded guest fuzzer (examples/guests/fuzz.c) against vmdesc,
 * one machine per seed, alternating examples/guests/fuzz.vmdesc's PCI and virtio-mmio
 * machines, every rule of run.ts checked after each. A seed that breaks a rule is saved in
 * tests/fuzz_guest/regressions/ (fuzz_guest_test.ts replays every file there).
 *
 *   deno task fuzz-guest [--seeds N] [--start S] [--ops M] [--machine pci|mmio|both]
 *                        [--json OUT.json] [--no-save] [--trace K]
 *
 * Exit status 0 when every seed passed, 1 otherwise.
 */
import { parseArgs } from "node:util";
import {
  buildFuzzGuest,
  type FuzzMachine,
  MACHINES,
  runSeed,
  saveRegression,
  type SeedResult,
  tally,
} from "./run.ts";
import { resources, workersGone } from "./resources.ts";

export interface FuzzRunOptions {
  seeds: number;
  start: number;
  ops: number;
  machines: readonly FuzzMachine[];
  save: boolean;
  /** trace=K for the guest (see run.ts). */
  trace?: number;
  /** Stops after the seed in progress (its temporary images removed, the totals kept). */
  signal?: AbortSignal;
  /** Called after each seed (progress). */
  onSeed?: (r: SeedResult, i: number) => void;
}

/** Runs the seeds (after one warm-up run that sets the resource baseline). */
export async function fuzzSeeds(opts: FuzzRunOptions): Promise<SeedResult[]> {
  await buildFuzzGuest();
  // Warm-up: the first machine loads the runtime's modules, libc, the workers' code; and
  // after any machine one eventfd + epoll pair of its vCPU worker's runtime stays open until
  // the next machine's worker replaces it (one pair, never more: measured), so the
  // baseline is taken after two.
  for (const machine of MACHINES) await runSeed({ seed: 0, ops: 10, machine });
  await workersGone();
  const baseline = resources();
  const results: SeedResult[] = [];
  for (let i = 0; i < opts.seeds && !opts.signal?.aborted; i++) {
    const seed = opts.start + i;
    const machine = opts.machines[i % opts.machines.length];
    const r = await runSeed({ seed, ops: opts.ops, machine, baseline, trace: opts.trace });
    if (r.problems.length && opts.save) saveRegression(r);
    results.push(r);
    opts.onSeed?.(r, i);
  }
  return results;
}

/** Which KVM this host has (the loaded module), for the record. */
function kvmModule(): string {
  for (const m of ["kvm_pvm", "kvm_intel", "kvm_amd"]) {
    try {
      Deno.statSync(`/sys/module/${m}`);
      return m;
    } catch {
      // not this one
    }
  }
  return "unknown";
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seeds: { type: "string", default: "20" },
      start: { type: "string", default: "1" },
      ops: { type: "string", default: "2000" },
      machine: { type: "string", default: "both" },
      json: { type: "string" },
      trace: { type: "string" },
      "no-save": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task fuzz-guest [--seeds N] [--start S] [--ops M] [--machine pci|mmio|both]\n" +
        "                            [--json OUT.json] [--no-save] [--trace K]\n" +
        "Runs examples/guests/fuzz.elf with seeds S..S+N-1 (M operations each) on vmdesc and\n" +
        "checks each run (tests/fuzz_guest/run.ts); failing seeds go to tests/fuzz_guest/regressions/.\n" +
        "--trace K: the guest prints each operation's number from K on (a failure shows the last).",
    );
    Deno.exit(0);
  }
  const machines = values.machine === "pci"
    ? ["fuzz_pci" as const]
    : values.machine === "mmio"
    ? ["fuzz_mmio" as const]
    : MACHINES;
  const t0 = performance.now();
  // Ctrl-C or SIGTERM: finish the seed in progress, then report what ran.
  const stop = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      if (stop.signal.aborted) Deno.exit(130);
      console.log("stopping after this seed (again: at once)");
      stop.abort();
    });
  }
  const results = await fuzzSeeds({
    signal: stop.signal,
    seeds: Number(values.seeds),
    start: Number(values.start),
    ops: Number(values.ops),
    machines,
    save: !values["no-save"],
    trace: values.trace !== undefined ? Number(values.trace) : undefined,
    onSeed: (r, i) => {
      if (r.problems.length) {
        console.log(`seed ${r.seed} (${r.machine}): FAILED\n  ${r.problems.join("\n  ")}`);
      } else if ((i + 1) % 50 === 0) {
        console.log(`${i + 1} seeds, last ${r.seed} (${r.machine}) ${r.ms} ms`);
      }
    },
  });
  const t = tally(results);
  const wallS = (performance.now() - t0) / 1000;
  console.log(
    `${t.seeds} seeds, ${t.ops} operations, ${t.failed} failed, ${t.exits} exits, ${
      wallS.toFixed(0)
    } s\noutcomes ${JSON.stringify(t.outcomes)}\nfaults the devices counted ${
      JSON.stringify(t.faults)
    }\nthe fuzzer's operations ${JSON.stringify(t.counts)}\nwhat the devices served ${
      JSON.stringify(t.served)
    }\nafter each close ${JSON.stringify(t.after)}`,
  );
  if (values.json) {
    const ms = results.map((r) => r.ms).sort((a, b) => a - b);
    Deno.writeTextFileSync(
      values.json,
      JSON.stringify(
        {
          what: "deno task fuzz-guest: seeded guest fuzzer against vmdesc (tests/fuzz_guest/)",
          date: new Date().toISOString(),
          host: { kvm: kvmModule(), cpus: navigator.hardwareConcurrency },
          args: { seeds: t.seeds, start: Number(values.start), ops: Number(values.ops), machines },
          wall_s: Math.round(wallS),
          per_seed_ms: { median: ms[ms.length >> 1], max: ms[ms.length - 1] },
          ...t,
          failures: results.filter((r) => r.problems.length).map((r) => ({
            seed: r.seed,
            machine: r.machine,
            problems: r.problems,
          })),
        },
        null,
        2,
      ) + "\n",
    );
  }
  Deno.exit(t.failed === 0 ? 0 : 1);
}
