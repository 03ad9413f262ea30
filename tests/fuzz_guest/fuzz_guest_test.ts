/**
 * The seeded guest fuzzer in CI (tests/fuzz_guest/run.ts says what each seed is held to):
 * a batch of seeds over both machines of examples/guests/fuzz.vmdesc, sized for about a
 * minute natively (VMDESC_FUZZ_SEEDS=N changes it), with the counts printed; and every
 * saved regression seed (tests/fuzz_guest/regressions/*.json) replayed.
 */
import assert from "node:assert/strict";
import { kvmTest } from "../guests/boot.ts";
import { fuzzSeeds } from "./mod.ts";
import { buildFuzzGuest, loadRegressions, MACHINES, runSeed, tally } from "./run.ts";
import { resources, workersGone } from "./resources.ts";

const SEEDS = Number(Deno.env.get("VMDESC_FUZZ_SEEDS") ?? 40);
const OPS = 2000;

kvmTest(`guest fuzzer: ${SEEDS} seeds × ${OPS} operations on PCI and virtio-mmio`, async () => {
  const results = await fuzzSeeds({
    seeds: SEEDS,
    start: 1,
    ops: OPS,
    machines: MACHINES,
    save: false,
  });
  const t = tally(results);
  console.log(
    `fuzz-guest: ${t.seeds} seeds, ${t.ops} operations, ${t.exits} exits, ${t.failed} failed; ` +
      `outcomes ${JSON.stringify(t.outcomes)}; device faults ${JSON.stringify(t.faults)}; ` +
      `after each close ${JSON.stringify(t.after)}`,
  );
  const failed = results.filter((r) => r.problems.length);
  assert.deepEqual(
    failed.map((r) => `seed ${r.seed} (${r.machine}): ${r.problems.join("; ")}`),
    [],
  );
  assert.equal(t.outcomes.done, SEEDS);
  // The fuzzer reached what it attacks: every kind of operation ran, and the devices
  // both served requests and refused broken ones.
  for (
    const k of ["port_w", "mmio_w", "cfg", "cf8", "sizing", "vinit", "vring", "notify", "msix"]
  ) {
    assert.ok((t.counts[k] ?? 0) > 0, `no ${k} operation ran: ${JSON.stringify(t.counts)}`);
  }
  // Every kind of block request was carried out at least once (DISCARD and WRITE_ZEROES
  // need a fitting segment, which fuzz.c's good_chain picks on purpose now and then).
  for (const k of ["chains", "reads", "writes", "flushes", "discards", "write_zeroes"]) {
    const n = results.reduce((a, r) => a + (r.served[k] ?? 0), 0);
    assert.ok(n > 0, `the devices served no ${k}`);
  }
  for (const k of ["descriptor_outside_ram", "ring_outside_ram", "queue_size", "status_protocol"]) {
    assert.ok((t.faults[k] ?? 0) > 0, `no ${k} fault: ${JSON.stringify(t.faults)}`);
  }
});

for (const reg of loadRegressions()) {
  kvmTest(`guest fuzzer regression: seed ${reg.seed} on ${reg.machine}`, async () => {
    await buildFuzzGuest();
    await runSeed({ seed: reg.seed, ops: reg.ops, machine: reg.machine }); // warm-up
    await workersGone();
    const r = await runSeed({ ...reg, baseline: resources() });
    assert.deepEqual(r.problems, [], `found as: ${reg.found}`);
  });
}
