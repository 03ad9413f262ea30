/**
 * CPUID policy: start from KVM_GET_SUPPORTED_CPUID, clear the features the Plan hides,
 * and give each vCPU its own APIC id (leaf 0x1 EBX[31:24], leaves 0xB/0x1F EDX) so an SMP
 * guest sees distinct CPUs.
 */
import * as host from "../host/libc.ts";
import { CPUID_MAX_ENTRIES, KVM_CPUID2, KVM_CPUID_ENTRY2, KVM_GET_SUPPORTED_CPUID } from "./abi.ts";
import { getField, setField } from "./layout.ts";
import { RuntimeError } from "../errors.ts";
import { CPUID_FEATURE_NAMES, CPUID_FEATURES, type FeatureBit } from "../../plan/cpuid.ts";

/** Leaves whose entries depend on the subleaf (KVM_CPUID_FLAG_SIGNIFCANT_INDEX). */
const INDEXED = new Set([4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x1d, 0x1f, 0x8000_001d]);

/** Reads KVM_GET_SUPPORTED_CPUID from the /dev/kvm fd: a kvm_cpuid2 buffer, trimmed. */
export function supportedCpuid(kvmFd: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(KVM_CPUID2.size + CPUID_MAX_ENTRIES * KVM_CPUID_ENTRY2.size);
  const dv = new DataView(buf.buffer);
  setField(dv, 0, KVM_CPUID2.f.nent, CPUID_MAX_ENTRIES);
  host.ioctlBuf(kvmFd, KVM_GET_SUPPORTED_CPUID, buf, "KVM_GET_SUPPORTED_CPUID");
  const n = getField(dv, 0, KVM_CPUID2.f.nent);
  return buf.slice(0, KVM_CPUID2.size + n * KVM_CPUID_ENTRY2.size);
}

/** A per-vCPU copy of `supported` with `hide` cleared and APIC ids set. */
export function vcpuCpuid(
  supported: Uint8Array<ArrayBuffer>,
  hide: readonly string[],
  apicId: number,
  cpuCount: number,
): Uint8Array<ArrayBuffer> {
  const buf = supported.slice();
  const dv = new DataView(buf.buffer);
  const n = getField(dv, 0, KVM_CPUID2.f.nent);
  const E = KVM_CPUID_ENTRY2.f;
  const bits: FeatureBit[] = hide.map((name) => {
    const b = Object.hasOwn(CPUID_FEATURES, name) ? CPUID_FEATURES[name] : undefined;
    if (!b) {
      throw new RuntimeError(
        "E1006",
        `cpuid.hide names an unknown feature "${name}"`,
        `known features: ${CPUID_FEATURE_NAMES.join(", ")}`,
      );
    }
    return b;
  });
  for (let i = 0; i < n; i++) {
    const base = KVM_CPUID2.f.entries.off + i * KVM_CPUID_ENTRY2.size;
    const leaf = getField(dv, base, E.function);
    const sub = getField(dv, base, E.index);
    for (const b of bits) {
      if (b.leaf === leaf && (!INDEXED.has(leaf) || b.subleaf === sub)) {
        setField(dv, base, E[b.reg], (getField(dv, base, E[b.reg]) & ~(1 << b.bit)) >>> 0);
      }
    }
    if (leaf === 1) {
      let ebx = getField(dv, base, E.ebx) & 0x0000_ffff;
      ebx |= (apicId & 0xff) << 24;
      ebx |= (Math.max(cpuCount, 1) & 0xff) << 16;
      setField(dv, base, E.ebx, ebx >>> 0);
      let edx = getField(dv, base, E.edx);
      if (cpuCount > 1) edx |= 1 << 28;
      setField(dv, base, E.edx, edx >>> 0);
    } else if (leaf === 0xb || leaf === 0x1f) {
      setField(dv, base, E.edx, apicId >>> 0);
    }
  }
  return buf;
}
