import assert from "node:assert/strict";
import { kvmTest, runGuest } from "./boot.ts";

kvmTest(
  "guest reset: i8042 self-test answers 0x55; 0xFE on port 0x64 ends the machine as a reset",
  async () => {
    const { result, output } = await runGuest("reset", "reset.vmdesc", { machine: "reset" });
    assert.equal(output, "reset: i8042 self-test 55\nreset: via i8042\n");
    assert.equal(result.reason, "reset");
    assert.equal(result.exitStatus, 0);
    const kbc = result.stats.devices.find((d) => d.kind === "i8042")!;
    assert.equal(kbc.model.resets_requested, 1);
  },
);

kvmTest(
  "guest reset: 0x06 to the PCI reset control register 0xCF9 ends the machine as a reset",
  async () => {
    const { result, output } = await runGuest("reset", "reset.vmdesc", { machine: "reset_cf9" });
    assert.equal(output, "reset: i8042 self-test 55\nreset: via cf9\n");
    assert.equal(result.reason, "reset");
    assert.equal(result.exitStatus, 0);
    const host = result.stats.devices.find((d) => d.kind === "pci_host")!;
    assert.equal(host.model.cf9_resets, 1);
  },
);
