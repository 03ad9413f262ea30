/**
 * KVM_SIGNAL_MSI, the message-signalled interrupt a device raises through its context
 * (`ctx.signalMsi`), on the real in-kernel LAPIC: blocked while the guest has not enabled
 * its LAPIC, delivered once it has, and an address naming no LAPIC reaches nobody.
 */
import { equal } from "node:assert/strict";
import { Vm } from "../../runtime/kvm/vm.ts";
import { boot } from "../../runtime/boot/mod.ts";
import * as host from "../../runtime/host/libc.ts";
import { KVM_EXIT, KVM_RUN, KVM_RUN_STRUCT } from "../../runtime/kvm/abi.ts";
import { flatPlan, haveKvm, withGuest } from "./plans.ts";

/** Software-enables the LAPIC (SVR at 0xfee000f0 = 0x1ff), then `out 0xf4, 0`; hlt. */
const ENABLE_LAPIC = new Uint8Array([
  ...[0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00, 0x00], // mov dword [0xfee000f0], 0x1ff
  ...[0xb0, 0x00, 0xe6, 0xf4], // mov al, 0; out 0xf4, al
  0xf4, // hlt
]);

Deno.test({
  name: "KVM_SIGNAL_MSI: blocked until the guest enables its LAPIC, then delivered",
  ignore: !haveKvm(),
  async fn() {
    await withGuest(ENABLE_LAPIC, async (path) => {
      const plan = flatPlan({ path });
      const vm = await Vm.create(plan);
      try {
        await boot(plan, vm.memory, vm.vcpus[0], "/");
        // Fixed delivery, vector 0x40, to APIC id 0 (address 0xfee00000).
        equal(vm.signalMsi(0xfee0_0000, 0x40), false, "a software-disabled LAPIC blocks it");
        equal(host.ioctl(vm.vcpus[0].fd, KVM_RUN, 0), 0);
        const exit = vm.vcpus[0].run.getUint32(KVM_RUN_STRUCT.f.exit_reason.off, true);
        equal(exit, KVM_EXIT.IO, "the guest enabled its LAPIC and reached its port write");
        equal(vm.signalMsi(0xfee0_0000, 0x40), true, "delivered to vCPU 0's LAPIC");
        equal(vm.signalMsi(0xfee0_5000, 0x40), false, "APIC id 5 does not exist");
      } finally {
        vm.close();
      }
    });
  },
});
