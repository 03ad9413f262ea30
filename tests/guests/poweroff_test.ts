import assert from "node:assert/strict";
import { kvmTest, runGuest } from "./boot.ts";

kvmTest(
  "guest poweroff: S5 through the FADT's sleep control register powers the machine off, status 0",
  async () => {
    const { result, output } = await runGuest("poweroff", "poweroff.vmdesc", {
      machine: "poweroff",
    });
    assert.equal(output, "poweroff: sleep control 0600, status 0601, S5 type 5\n");
    assert.equal(result.reason, "poweroff", result.message);
    assert.equal(result.message, "guest powered off (acpi_sleep)");
    assert.equal(result.exitStatus, 0);
    const dev = result.stats.devices.find((d) => d.kind === "acpi_sleep")!;
    assert.equal(dev.model.poweroffs, 1);
  },
);

kvmTest("guest poweroff: a sleep state the DSDT never offered (S3) wakes at once", async () => {
  const { result, output } = await runGuest("poweroff", "poweroff.vmdesc", {
    machine: "poweroff",
    cmdline: "try=s3",
  });
  assert.equal(
    output,
    "poweroff: sleep control 0600, status 0601, S5 type 5\npoweroff: S3 woke at once\n",
  );
  assert.equal(result.reason, "poweroff");
  assert.equal(result.exitStatus, 0);
  const dev = result.stats.devices.find((d) => d.kind === "acpi_sleep")!;
  assert.equal(dev.model.unsupported_sleeps, 1);
});

kvmTest("guest poweroff: without ACPI there are no sleep registers to find", async () => {
  const { result, output } = await runGuest("poweroff", "poweroff.vmdesc", {
    machine: "poweroff_no_acpi",
  });
  assert.equal(output, "poweroff: no FADT with sleep registers\n");
  assert.equal(result.reason, "debug_exit");
  assert.equal(result.exitStatus, (2 << 1) | 1);
});
