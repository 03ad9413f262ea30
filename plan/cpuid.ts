/**
 * CPU feature names and where each feature's bits live in CPUID. One table for both sides:
 * `lang/` accepts these names in `cpuid { hide … }` (with a did-you-mean), `runtime/`
 * clears these bits in the vCPUs' CPUID.
 *
 * Names: CPU features as Linux's /proc/cpuinfo spells them (`cx16`, `x2apic`,
 * `hypervisor`); KVM's paravirtual features (leaf 0x4000_0001) as QEMU's `-cpu` options
 * spell them, with `_` for `-` (`kvmclock`, `kvm_pv_eoi`, `kvm_pv_unhalt`), since
 * /proc/cpuinfo does not list them.
 */
export type CpuidReg = "eax" | "ebx" | "ecx" | "edx";
export interface CpuidFeature {
  leaf: number;
  subleaf: number;
  reg: CpuidReg;
  /** The bits hiding this feature clears (one, except where one name covers two versions). */
  bits: readonly number[];
}

/** KVM's hypervisor leaves (Documentation/virt/kvm/x86/cpuid.rst). */
export const KVM_CPUID_SIGNATURE = 0x4000_0000;
export const KVM_CPUID_FEATURES = 0x4000_0001;
/** The timing leaf VMMs add (TSC and local APIC bus frequencies in kHz), as QEMU does. */
export const HYPERVISOR_TIMING_LEAF = 0x4000_0010;

/** KVM_CPUID_FEATURES EAX bits (<asm/kvm_para.h>). */
export const KVM_FEATURE = {
  CLOCKSOURCE: 0,
  NOP_IO_DELAY: 1,
  MMU_OP: 2,
  CLOCKSOURCE2: 3,
  ASYNC_PF: 4,
  STEAL_TIME: 5,
  PV_EOI: 6,
  PV_UNHALT: 7,
  PV_TLB_FLUSH: 9,
  ASYNC_PF_VMEXIT: 10,
  PV_SEND_IPI: 11,
  POLL_CONTROL: 12,
  PV_SCHED_YIELD: 13,
  ASYNC_PF_INT: 14,
  MSI_EXT_DEST_ID: 15,
  HC_MAP_GPA_RANGE: 16,
  MIGRATION_CONTROL: 17,
  CLOCKSOURCE_STABLE_BIT: 24,
} as const;

/** Feature name → where its bits live. */
export const CPUID_FEATURES: Record<string, CpuidFeature> = {};
function def(
  leaf: number,
  subleaf: number,
  reg: CpuidReg,
  names: Record<string, number | readonly number[]>,
) {
  for (const [n, b] of Object.entries(names)) {
    CPUID_FEATURES[n] = { leaf, subleaf, reg, bits: typeof b === "number" ? [b] : b };
  }
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

const K = KVM_FEATURE;
def(KVM_CPUID_FEATURES, 0, "eax", {
  // Both clock MSR sets: a guest falls back to the old ones when only the new are hidden.
  kvmclock: [K.CLOCKSOURCE, K.CLOCKSOURCE2],
  kvm_nopiodelay: K.NOP_IO_DELAY,
  // Both ways of delivering "page ready": Linux uses async PF only with the interrupt one.
  kvm_asyncpf: [K.ASYNC_PF, K.ASYNC_PF_INT],
  kvm_steal_time: K.STEAL_TIME,
  kvm_pv_eoi: K.PV_EOI,
  kvm_pv_unhalt: K.PV_UNHALT,
  kvm_pv_tlb_flush: K.PV_TLB_FLUSH,
  kvm_asyncpf_vmexit: K.ASYNC_PF_VMEXIT,
  kvm_pv_ipi: K.PV_SEND_IPI,
  kvm_poll_control: K.POLL_CONTROL,
  kvm_pv_sched_yield: K.PV_SCHED_YIELD,
  kvmclock_stable_bit: K.CLOCKSOURCE_STABLE_BIT,
});

export const CPUID_FEATURE_NAMES: readonly string[] = Object.keys(CPUID_FEATURES).sort();
