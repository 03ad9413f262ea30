import assert from "node:assert/strict";
import { kvmTest, runGuest } from "./boot.ts";

kvmTest("guest smp: every declared vCPU starts through INIT/SIPI and is counted", async () => {
  const { plan, result, output } = await runGuest("smp", "smp.vmdesc");
  const n = plan.cpus.count;
  assert.ok(n > 1, "the smp machine declares several CPUs");
  assert.match(output, new RegExp(`^cpus: ${n}$`, "m"));
  const ids = output.match(/^smp: AP apic ids:(.*)$/m)?.[1].trim().split(" ").map(Number) ?? [];
  assert.deepEqual(ids.sort((a, b) => a - b), Array.from({ length: n - 1 }, (_, i) => i + 1));
  assert.equal(result.reason, "debug_exit");
  assert.equal(result.debugValue, n);
  assert.equal(result.exitStatus, (n << 1) | 1);
});
