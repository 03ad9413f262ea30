/**
 * CPUID through KVM: KVM_GET_SUPPORTED_CPUID read once per machine, KVM_GET_TSC_KHZ, and
 * the kvm_cpuid2 buffers KVM_SET_CPUID2 takes. What each vCPU is shown is decided in
 * `cpuid_policy.ts` (pure).
 */
import * as host from "../host/libc.ts";
import { HostError } from "../host/libc.ts";
import {
  CPUID_MAX_ENTRIES,
  KVM_CAP,
  KVM_CHECK_EXTENSION,
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_GET_SUPPORTED_CPUID,
  KVM_GET_TSC_KHZ,
} from "./abi.ts";
import { getField, setField } from "./layout.ts";
import type { CpuidEntry } from "./cpuid_policy.ts";

export type { CpuidEntry } from "./cpuid_policy.ts";
export { vcpuCpuid } from "./cpuid_policy.ts";

const E = KVM_CPUID_ENTRY2.f;
const REGS = ["function", "index", "flags", "eax", "ebx", "ecx", "edx"] as const;

/** Reads KVM_GET_SUPPORTED_CPUID from the /dev/kvm fd. */
export function supportedCpuid(kvmFd: number): CpuidEntry[] {
  const buf = new Uint8Array(KVM_CPUID2.size + CPUID_MAX_ENTRIES * KVM_CPUID_ENTRY2.size);
  const dv = new DataView(buf.buffer);
  setField(dv, 0, KVM_CPUID2.f.nent, CPUID_MAX_ENTRIES);
  host.ioctlBuf(kvmFd, KVM_GET_SUPPORTED_CPUID, buf, "KVM_GET_SUPPORTED_CPUID");
  return decodeCpuid(buf);
}

/** A kvm_cpuid2 buffer (header + entries) → entries. */
export function decodeCpuid(buf: Uint8Array<ArrayBuffer>): CpuidEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = getField(dv, 0, KVM_CPUID2.f.nent);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const base = KVM_CPUID2.f.entries.off + i * KVM_CPUID_ENTRY2.size;
    const e = {} as CpuidEntry;
    for (const r of REGS) e[r] = getField(dv, base, E[r]) >>> 0;
    out.push(e);
  }
  return out;
}

/** Entries → the kvm_cpuid2 buffer KVM_SET_CPUID2 takes. */
export function encodeCpuid(entries: readonly CpuidEntry[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(KVM_CPUID2.size + entries.length * KVM_CPUID_ENTRY2.size);
  const dv = new DataView(buf.buffer);
  setField(dv, 0, KVM_CPUID2.f.nent, entries.length);
  entries.forEach((e, i) => {
    const base = KVM_CPUID2.f.entries.off + i * KVM_CPUID_ENTRY2.size;
    for (const r of REGS) setField(dv, base, E[r], e[r] >>> 0);
  });
  return buf;
}

/**
 * The guest TSC frequency in kHz (KVM_GET_TSC_KHZ on a vCPU fd), or null when this KVM
 * cannot say: no KVM_CAP_GET_TSC_KHZ, or the host's own TSC rate is unknown (EIO).
 */
export function tscKhz(kvmFd: number, vcpuFd: number): number | null {
  if (host.ioctl(kvmFd, KVM_CHECK_EXTENSION, KVM_CAP.GET_TSC_KHZ) <= 0) return null;
  try {
    const khz = host.ioctl(vcpuFd, KVM_GET_TSC_KHZ, 0);
    return khz > 0 ? khz : null;
  } catch (e) {
    if (e instanceof HostError) return null;
    throw e;
  }
}
