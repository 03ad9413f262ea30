/**
 * Facts about this host's KVM that tests check against. Whether a test may skip is decided
 * by ./skip.ts, and only there.
 */
import { doesNotMatch, match } from "node:assert/strict";

/**
 * Whether this host's KVM resets a vCPU when its guest shuts down (triple fault). KVM's AMD
 * SVM backend does (the VMCB is undefined after a shutdown intercept, so it INITs the
 * vCPU before reporting KVM_EXIT_SHUTDOWN); Intel VMX and the software `kvm_pvm` keep the
 * state at the fault. The nested test bed runs KVM's SVM backend.
 */
export function kvmResetsOnShutdown(): boolean {
  try {
    Deno.statSync("/sys/module/kvm_amd");
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Checks a triple fault's register dump for what is true on this host: the registers at
 * the fault (`rip`, when given, is where the guest faulted), or, where KVM reset the vCPU,
 * the note saying so and no registers that would point at the reset vector.
 */
export function checkTripleFaultDump(dump: string, opts: { rip?: number } = {}): void {
  if (kvmResetsOnShutdown()) {
    match(dump, /registers unavailable: KVM reset this vCPU when the guest shut down/);
    doesNotMatch(dump, /\brip 0x[0-9a-f]+ {2}rsp\b/, "no reset-vector registers as the fault");
    return;
  }
  for (const reg of ["rip", "rsp", "rflags", "cr0", "cr3", "cr4", "efer", "cs", "ss"]) {
    match(dump, new RegExp(`\\b${reg}\\b`));
  }
  if (opts.rip !== undefined) {
    match(dump, new RegExp(`rip 0x${opts.rip.toString(16).padStart(8, "0")}\\b`));
  }
  // Protected mode (CR0.PE) at the fault, not the reset state (CR0 0x60000010).
  const cr0 = Number(/cr0 (0x[0-9a-f]+)/.exec(dump)?.[1]);
  match(String(cr0 & 1), /^1$/, `cr0 ${cr0.toString(16)} has PE at the fault`);
}
