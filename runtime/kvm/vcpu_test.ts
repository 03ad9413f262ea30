/** isInitState: the x86 INIT state that KVM on AMD SVM leaves behind after a shutdown. */
import { equal } from "node:assert/strict";
import { KVM_REGS, KVM_SREGS } from "./abi.ts";
import { Struct } from "./layout.ts";
import { FLAT_CODE32, isInitState, PROTECTED_MODE_CR0, readSegment, writeSegment } from "./vcpu.ts";

/** The registers of a vCPU just after INIT (as KVM_GET_REGS/SREGS show them). */
function initState() {
  const r = new Struct(KVM_REGS).set("rip", 0xfff0).set("rflags", 2).set("rdx", 0x600);
  const s = new Struct(KVM_SREGS).set("cr0", 0x6000_0010);
  writeSegment(s, "cs", {
    ...readSegment(s, "cs"),
    selector: 0xf000,
    base: 0xffff_0000,
    limit: 0xffff,
    type: 0xb,
    present: 1,
    s: 1,
  });
  return { r, s };
}

Deno.test("isInitState: the reset state is recognised, caches on or off", () => {
  const { r, s } = initState();
  equal(isInitState(r, s), true);
  // INIT keeps CD and NW: a guest that had cleared them comes back with CR0 0x10 (seen on
  // KVM's SVM backend after a triple fault).
  s.set("cr0", 0x10);
  equal(isInitState(r, s), true);
});

Deno.test("isInitState: a state a guest can fault in is not the reset state", () => {
  // Protected mode at the faulting instruction (what a triple fault leaves on Intel VMX).
  const pm = initState();
  pm.r.set("rip", 0x10_0007);
  pm.s.set("cr0", PROTECTED_MODE_CR0);
  writeSegment(pm.s, "cs", FLAT_CODE32);
  equal(isInitState(pm.r, pm.s), false);
  // At the reset vector but with interrupts on, or in protected mode: not INIT either.
  const iflag = initState();
  iflag.r.set("rflags", 0x202);
  equal(isInitState(iflag.r, iflag.s), false);
  const cr0 = initState();
  cr0.s.set("cr0", 0x6000_0011);
  equal(isInitState(cr0.r, cr0.s), false);
  const rip = initState();
  rip.r.set("rip", 0xfff1);
  equal(isInitState(rip.r, rip.s), false);
});
