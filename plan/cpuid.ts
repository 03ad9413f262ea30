/**
 * CPU feature names, as Linux's /proc/cpuinfo spells them, and where each bit lives in
 * CPUID. One table for both sides: `lang/` accepts these names in `cpuid { hide … }` (with
 * a did-you-mean), `runtime/` clears these bits in the vCPUs' CPUID.
 */
export type CpuidReg = "eax" | "ebx" | "ecx" | "edx";
export interface FeatureBit {
  leaf: number;
  subleaf: number;
  reg: CpuidReg;
  bit: number;
}

/** Feature names as /proc/cpuinfo spells them → where the bit lives. */
export const CPUID_FEATURES: Record<string, FeatureBit> = {};
function def(leaf: number, subleaf: number, reg: CpuidReg, names: Record<string, number>) {
  for (const [n, bit] of Object.entries(names)) CPUID_FEATURES[n] = { leaf, subleaf, reg, bit };
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

export const CPUID_FEATURE_NAMES: readonly string[] = Object.keys(CPUID_FEATURES).sort();
