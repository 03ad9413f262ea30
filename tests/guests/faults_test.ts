/** The misbehaving guests of examples/guests/faults.vmdesc end as documented there. */
import assert from "node:assert/strict";
import { kvmTest, runGuest } from "./boot.ts";
import { checkTripleFaultDump } from "../kvm.ts";

kvmTest("guest triple-fault: 'guest triple fault' with a register dump, status 4", async () => {
  const { result, output } = await runGuest("triple-fault", "faults.vmdesc", {
    machine: "triple_fault",
  });
  assert.equal(output, "triple-fault: empty IDT, then ud2\n");
  assert.equal(result.reason, "triple_fault");
  assert.match(result.message, /guest triple fault/);
  checkTripleFaultDump(result.dump ?? "");
  assert.equal(result.exitStatus, 4);
});

kvmTest("guest rom-write: a write into the read-only ECAM slot is dropped, status 1", async () => {
  const { plan, result, output } = await runGuest("rom-write", "faults.vmdesc", {
    machine: "rom_write",
  });
  assert.equal(plan.hole?.strategy, "shadow");
  const slot = plan.memslots.find((m) => m.guest_phys === plan.hole!.ecam!.base);
  assert.ok(slot?.flags.includes("readonly"), "the ECAM window is a read-only memslot");
  const addr = (plan.hole!.ecam!.base + (31 << 15) + (7 << 12)).toString(16);
  assert.equal(
    output,
    `rom-write: wrote 12345678 to ${addr}, read back ffffffff\nrom-write: vendor id write ignored\n`,
  );
  assert.equal(result.reason, "debug_exit");
  assert.equal(result.exitStatus, 1);
  const host = result.stats.devices.find((d) => d.kind === "pci_host")!;
  assert.equal(host.model.absent_writes, 1, "the host bridge saw (and dropped) the write");
});

kvmTest(
  "guest unassigned-mmio: reads all-ones from an address nothing decodes, status 1",
  async () => {
    const { result, output } = await runGuest("unassigned-mmio", "faults.vmdesc", {
      machine: "unassigned_mmio",
    });
    assert.equal(output, "unassigned-mmio: read d0000000 = ffffffff\n");
    assert.equal(result.reason, "debug_exit");
    assert.equal(result.exitStatus, 1);
    assert.equal(result.stats.unclaimed.mmio_read, 1);
  },
);

kvmTest("guest endless-loop: only the timeout ends it, status 6", async () => {
  const { result, output } = await runGuest("endless-loop", "faults.vmdesc", {
    machine: "endless_loop",
    timeout: 1,
  });
  assert.equal(output, "endless-loop: spinning\n");
  assert.equal(result.reason, "timeout");
  assert.equal(result.exitStatus, 6);
});
