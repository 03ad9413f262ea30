/**
 * The soak in CI, at a size that fits (tests/soak/soak.ts; `deno task soak` runs the full
 * 1000 + 200): every boot ends as hello does and leaves fds, vmdesc's mappings and worker
 * threads exactly at their baseline; RSS, the total mappings and the boot time of the last
 * block of boots stay within tolerant bounds of the first block's (ratios, never absolute
 * times: the CPU is shared). And a machine closed while its guest writes to a disk loses
 * no write the guest saw completed and leaves nothing behind, on both transports.
 */
import assert from "node:assert/strict";
import { kvmTest } from "../guests/boot.ts";
import { cliBoots, firstAndLast, inflightClose, libraryBoots } from "./soak.ts";

// The sizes: CI in the nested test bed (a boot there takes seconds) sets smaller ones.
const BOOTS = Number(Deno.env.get("VMDESC_SOAK_BOOTS") ?? 200);
const CLI_BOOTS = Number(Deno.env.get("VMDESC_SOAK_CLI") ?? 30);

kvmTest(`soak: ${BOOTS} library boots of hello stay flat`, async () => {
  const r = await libraryBoots(BOOTS);
  assert.deepEqual(r.problems, []);
  const block = Math.floor(BOOTS / 4);
  const { first, last } = firstAndLast(r.boots, block);
  console.log(
    `soak library: first ${block} ${JSON.stringify(first)}\n  last ${block} ${
      JSON.stringify(last)
    }`,
  );
  // Exact: fds never moved from the baseline (checked per boot above, summarized here).
  assert.equal(first.fds.min, r.baseline.fds);
  assert.equal(last.fds.max, r.baseline.fds);
  // Tolerant: a leak of one guest's RAM (64 MiB) or a mapping per boot would exceed these.
  assert.ok(last.rssKiB.median < first.rssKiB.median * 1.25 + 16 * 1024, "RSS grew");
  assert.ok(last.mapsTotal.median <= first.mapsTotal.median + 20, "mappings grew");
  assert.ok(last.threads.median <= first.threads.median + 2, "threads grew");
  // Time: the CPU each boot cost (wall time swings with the other load of a shared host).
  // Under `deno test` it steps once, not grows: measured 38 → 81 ms a boot at about boot
  // 100, when the test process's heap shrank from 353 to 177 MiB (a major GC), then flat
  // for 300 boots more; `deno task soak` (plain `deno run`) measured 49.7 → 49.5 ms over
  // 1000. A bound of 3× allows that step and still fails a cost that grows with every boot.
  assert.ok(last.cpuMs.median < first.cpuMs.median * 3, "boots cost more CPU");
});

kvmTest(`soak: ${CLI_BOOTS} CLI boots of hello`, async () => {
  const r = await cliBoots(CLI_BOOTS);
  assert.deepEqual(r.problems, []);
  const block = Math.floor(CLI_BOOTS / 3);
  const { first, last } = firstAndLast(r.boots, block);
  console.log(
    `soak CLI: first ${block} ${JSON.stringify(first)}\n  last ${block} ${JSON.stringify(last)}`,
  );
  assert.ok(last.ms.median < first.ms.median * 2.5, "CLI boots got slower");
  // Each boot's own peak RSS (a fresh process each time: nothing should move at all).
  assert.ok(first.rssKiB.median > 0, "the children's RSS was read");
  assert.ok(last.rssKiB.median < first.rssKiB.median * 1.25, "CLI boots grew");
});

for (const machine of ["virtio_pci", "virtio_mmio"]) {
  kvmTest(`soak: a machine closed mid-write loses no completed write (${machine})`, async () => {
    const r = await inflightClose(machine, 200);
    assert.ok(r.reported >= 199, `the guest reported ${r.reported} writes`);
    assert.deepEqual(r.lost, []);
    assert.deepEqual(r.stray, []);
    assert.deepEqual(r.leaks, []);
    // Closed by the host, not ended by the guest.
    assert.notEqual(r.reason, "debug_exit");
  });
}
