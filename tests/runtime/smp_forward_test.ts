/**
 * SMP device access: an AP's port I/O reaches the device models on vCPU 0's thread through
 * the mailbox + kick, while vCPU 0 spins without exits (so only the kick can wake it).
 */
import { equal, ok } from "node:assert/strict";
import { Machine } from "../../runtime/machine.ts";
import { debugExitDevice, flatPlan, serialDevice, writeTemp } from "./plans.ts";
import { skipReason } from "../skip.ts";

/** Every vCPU starts here; CPUID leaf 1 EBX[31:24] (the APIC id vmdesc sets) picks the role. */
const GUEST = new Uint8Array([
  0xb8,
  0x01,
  0x00,
  0x00,
  0x00, // mov eax, 1
  0x0f,
  0xa2, // cpuid
  0xc1,
  0xeb,
  0x18, // shr ebx, 24
  0x85,
  0xdb, // test ebx, ebx
  0x75,
  0x11, // jnz ap
  // bsp: spin (no exits) until the AP's flag, then exit 0
  0xa1,
  0x00,
  0x00,
  0x20,
  0x00, // mov eax, [0x200000]
  0x85,
  0xc0, // test eax, eax
  0x74,
  0xf7, // jz bsp
  0xb0,
  0x00,
  0xe6,
  0xf4, // mov al, 0; out 0xf4, al
  0xfa,
  0xf4,
  0xeb,
  0xfe, // cli; hlt; jmp $
  // ap: "B\n" on COM1, an unclaimed port read, then raise the flag
  0x66,
  0xba,
  0xf8,
  0x03, // mov dx, 0x3f8
  0xb0,
  0x42,
  0xee, // mov al, 'B'; out dx, al
  0xb0,
  0x0a,
  0xee, // mov al, 10; out dx, al
  0xe4,
  0x80, // in al, 0x80
  0xa3,
  0x04,
  0x00,
  0x20,
  0x00, // mov [0x200004], eax
  0xc7,
  0x05,
  0x00,
  0x00,
  0x20,
  0x00,
  0x01,
  0x00,
  0x00,
  0x00, // mov dword [0x200000], 1
  0xeb,
  0xfe, // jmp $
]);

Deno.test({
  name: "SMP: an AP's PIO is forwarded to vCPU 0's devices while vCPU 0 spins",
  ignore: skipReason("SMP forwarding test", { kvm: true }) !== null,
  async fn() {
    const path = await writeTemp(GUEST);
    try {
      const plan = flatPlan({ path, cpus: 2, devices: [serialDevice(), debugExitDevice()] });
      let out = "";
      using m = await Machine.create(plan, {
        apsAtEntry: true,
        output: (_id, b) => out += new TextDecoder().decode(b),
      });
      const r = await m.run({ timeout: 20 });
      equal(r.reason, "debug_exit", r.message);
      equal(r.exitStatus, 1);
      equal(out, "B\n");
      equal(m.memory.read(0x200004, 1)[0], 0xff, "the forwarded unclaimed read returned all-ones");
      ok(r.stats.forwarded >= 3, `forwarded ${r.stats.forwarded}`);
      equal(r.stats.unclaimed.pio_read, 1);
      equal(r.stats.devices.find((d) => d.id === "com1")?.pio_exits, 2);
    } finally {
      await Deno.remove(path);
    }
  },
});
