/**
 * CPU state at the payload's entry, read by the guest itself: what a 32-bit protected-mode
 * entry (flat `protected` and PVH, both through Vcpu.enterProtectedMode) hands over.
 */
import { equal } from "node:assert/strict";
import { Machine } from "../../runtime/machine.ts";
import type { DevicePlan } from "../../plan/types.ts";
import { flatPlan, writeTemp } from "./plans.ts";
import { skipReason } from "../skip.ts";

const kvm = skipReason("entry state tests", { kvm: true }) === null;

/** debug_exit taking 32-bit writes, so the guest can report a whole register. */
function wideExit(): DevicePlan {
  return {
    id: "debug_exit",
    kind: "debug_exit",
    ports: [{ base: 0xf4, size: 4 }],
    mmio: [],
    irq: null,
    props: { port: 0xf4, size: 4 },
  };
}

Deno.test({
  name: "protected-mode entry: CR0 has PE (and ET) only; the reset value's CD and NW are clear",
  ignore: !kvm,
  async fn() {
    // mov eax, cr0; out 0xf4, eax; cli; hlt; jmp $-1
    const guest = new Uint8Array([0x0f, 0x20, 0xc0, 0xe7, 0xf4, 0xfa, 0xf4, 0xeb, 0xfd]);
    const path = await writeTemp(guest);
    try {
      using m = await Machine.create(flatPlan({ path, devices: [wideExit()] }));
      const r = await m.run({ timeout: 10 });
      equal(r.reason, "debug_exit");
      // PVH ABI: "CR0: PE set, all other writeable bits clear". 0x6000_0011 before the fix.
      equal(r.debugValue?.toString(16), (0x11).toString(16));
    } finally {
      await Deno.remove(path);
    }
  },
});
