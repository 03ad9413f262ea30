/**
 * CPUID policy: start from KVM_GET_SUPPORTED_CPUID, clear the features the Plan hides,
 * and give each vCPU its own APIC id (leaf 0x1 EBX[31:24], leaves 0xB/0x1F EDX) so an SMP
 * guest sees distinct CPUs.
 */
import * as host from "../host/libc.ts";
import { CPUID_MAX_ENTRIES, KVM_CPUID2, KVM_CPUID_ENTRY2, KVM_GET_SUPPORTED_CPUID } from "./abi.ts";
import { getField, setField } from "./layout.ts";
import { RuntimeError } from "../errors.ts";

type Reg = "eax" | "ebx" | "ecx" | "edx";
interface FeatureBit {
  leaf: number;
  subleaf: number;
  reg: Reg;
  bit: number;
}

/** Feature names as /proc/cpuinfo spells them → where the bit lives. */
const FEATURES: Record<string, FeatureBit> = {};
function def(leaf: number, subleaf: number, reg: Reg, names: Record<string, number>) {
  for (const [n, bit] of Object.entries(names)) FEATURES[n] = { leaf, subleaf, reg, bit };
}
def(1, 0, "edx", {
  fpu: 0,
  vme: 1,
  de: 2,
  pse: 3,
  tsc: 4,
  msr: 5,
  pae: 6,
  mce: 7,
  cx8: 8,
  apic: 9,
  sep: 11,
  mtrr: 12,
  pge: 13,
  mca: 14,
  cmov: 15,
  pat: 16,
  pse36: 17,
  clflush: 19,
  mmx: 23,
  fxsr: 24,
  sse: 25,
  sse2: 26,
  ht: 28,
});
def(1, 0, "ecx", {
  pni: 0,
  sse3: 0,
  pclmulqdq: 1,
  monitor: 3,
  vmx: 5,
  ssse3: 9,
  fma: 12,
  cx16: 13,
  pdcm: 15,
  pcid: 17,
  sse4_1: 19,
  sse4_2: 20,
  x2apic: 21,
  movbe: 22,
  popcnt: 23,
  tsc_deadline_timer: 24,
  aes: 25,
  xsave: 26,
  avx: 28,
  f16c: 29,
  rdrand: 30,
  hypervisor: 31,
});
def(7, 0, "ebx", {
  fsgsbase: 0,
  bmi1: 3,
  hle: 4,
  avx2: 5,
  smep: 7,
  bmi2: 8,
  erms: 9,
  invpcid: 10,
  rtm: 11,
  avx512f: 16,
  avx512dq: 17,
  rdseed: 18,
  adx: 19,
  smap: 20,
  clflushopt: 23,
  clwb: 24,
  avx512cd: 28,
  sha_ni: 29,
  avx512bw: 30,
  avx512vl: 31,
});
def(7, 0, "ecx", { umip: 2, pku: 3, waitpkg: 5, vaes: 9, vpclmulqdq: 10, la57: 16, rdpid: 22 });
def(7, 0, "edx", { md_clear: 10, arch_capabilities: 29 });
def(0xd, 1, "eax", { xsaveopt: 0, xsavec: 1, xgetbv1: 2, xsaves: 3 });
def(0x8000_0001, 0, "ecx", { lahf_lm: 0, abm: 5, sse4a: 6, prefetchw: 8 });
def(0x8000_0001, 0, "edx", { syscall: 11, nx: 20, pdpe1gb: 26, rdtscp: 27, lm: 29 });

export const CPUID_FEATURE_NAMES: readonly string[] = Object.keys(FEATURES).sort();

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
    const b = FEATURES[name];
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
