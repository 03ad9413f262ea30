import assert from "node:assert/strict";
import { kvmTest, runGuest } from "./boot.ts";

kvmTest("guest echo: serial RX by interrupt (GSI 4 through the IOAPIC) wakes HLT", async () => {
  const { result, output } = await runGuest("echo", "echo.vmdesc", {
    stdin: "vmdesc\n",
    timeout: 20,
  });
  assert.equal(output, "echo: ready (interrupts)\necho: vmdesc\n");
  assert.equal(result.reason, "debug_exit");
  assert.equal(result.debugValue, 6);
  const com1 = result.stats.devices.find((d) => d.kind === "serial")!;
  assert.ok(com1.model.irq_raises >= 1, `irq_raises ${com1.model.irq_raises}`);
  assert.equal(com1.model.rx_bytes, 7);
});

kvmTest("guest echo: serial RX by polling LSR", async () => {
  const { result, output } = await runGuest("echo", "echo.vmdesc", {
    stdin: "polled\n",
    cmdline: "mode=poll",
    timeout: 20,
  });
  assert.equal(output, "echo: ready (polling)\necho: polled\n");
  assert.equal(result.exitStatus, (6 << 1) | 1);
});
