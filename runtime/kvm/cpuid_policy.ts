/**
 * The CPUID a vCPU sees, decided from KVM_GET_SUPPORTED_CPUID and the Plan. Pure: entries
 * in, entries out (`cpuid.ts` does the ioctls), so every rule here is unit-tested without
 * a KVM.
 *
 * KVM reports what it *can* virtualize; a VMM still has to present a machine. On top of
 * KVM's table, as QEMU, Firecracker and Cloud Hypervisor do:
 *
 * - **Hypervisor present** (CPUID.1:ECX[31]). KVM leaves it clear. Without it Linux never
 *   looks at the hypervisor leaves, so it finds no kvmclock and, on a machine with no HPET
 *   or PM timer, cannot calibrate its TSC ("Marking TSC unstable").
 * - **KVM's leaves** 0x4000_0000 (signature "KVMKVMKVM", highest leaf) and 0x4000_0001
 *   (paravirtual features), passed through with only the features this runtime supports:
 *   those KVM implements entirely in the kernel ({@link RUNTIME_KVM_FEATURES}). Left out:
 *   MSI_EXT_DEST_ID (the VMM's MSI routing would have to decode the extended destination
 *   id), HC_MAP_GPA_RANGE (a hypercall that exits to the VMM, for confidential guests),
 *   MIGRATION_CONTROL (an MSR the VMM would have to serve) and the obsolete MMU_OP. The
 *   legacy async page fault (a #PF-delivered "page ready") is offered only together with
 *   its interrupt-based successor ASYNC_PF_INT, the only form Linux 5.9+ uses. The hints
 *   word (EDX: REALTIME = vCPUs pinned to dedicated host CPUs) stays 0: nothing pins them.
 * - **TSC frequency**: Linux 6.1 on KVM takes it from kvmclock (`kvm_get_tsc_khz`, which
 *   also sets TSC_KNOWN_FREQ) and reads no CPUID leaf for it. Other guests (FreeBSD, the
 *   test guests) read the timing leaf 0x4000_0010 (EAX TSC kHz, EBX local APIC bus kHz)
 *   that QEMU adds; it is added here when KVM_GET_TSC_KHZ answered and the TSC is
 *   invariant (CPUID.8000_0007:EDX[8]), as QEMU does. Leaf 0x15 is left alone: Linux reads
 *   it only on Intel without kvmclock, where it would also take the crystal as the APIC
 *   timer's clock, and with kvmclock hidden the in-kernel PIT calibrates the TSC instead.
 * - **Topology** for N vCPUs: one package of N single-thread cores, APIC id = vCPU index.
 *   Leaf 1 (APIC id, logical count, HTT), leaf 4 (cores per package, threads sharing each
 *   cache), 0xB/0x1F (SMT and core levels; KVM reports "no topology"), and on AMD
 *   0x8000_0008 ECX (core count and APIC-id core bits), CmpLegacy, 0x8000_001D (cache
 *   sharing) and 0x8000_001E (extended APIC id, core id; KVM zeroes it). Each one is
 *   rewritten only where KVM reported the leaf, so the guest sees N cores whichever
 *   leaves its vendor's code reads.
 *
 * `cpuid { hide … }` is applied last, so a hidden name always wins (`hypervisor`,
 * `kvmclock`, `ht`, …).
 */
import {
  CPUID_FEATURE_NAMES,
  CPUID_FEATURES,
  type CpuidFeature,
  HYPERVISOR_TIMING_LEAF,
  KVM_CPUID_FEATURES,
  KVM_CPUID_SIGNATURE,
  KVM_FEATURE,
} from "../../plan/cpuid.ts";
import { RuntimeError } from "../errors.ts";

/** One kvm_cpuid_entry2, as numbers (registers unsigned 32-bit). */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** KVM_CPUID_FLAG_SIGNIFCANT_INDEX (sic, as <asm/kvm.h> spells it): the subleaf matters. */
export const CPUID_FLAG_SIGNIFICANT_INDEX = 1;

/** CPUID.1:ECX[31]. */
export const HYPERVISOR_BIT = 31;
/** KVM's local APIC timer runs at 1 GHz (APIC_BUS_CYCLE_NS = 1 in arch/x86/kvm/lapic.h). */
export const KVM_APIC_BUS_KHZ = 1_000_000;

const F = KVM_FEATURE;
/** The paravirtual features KVM implements in the kernel with nothing asked of the VMM. */
export const RUNTIME_KVM_FEATURES: readonly number[] = [
  F.CLOCKSOURCE,
  F.NOP_IO_DELAY,
  F.CLOCKSOURCE2,
  F.ASYNC_PF,
  F.STEAL_TIME,
  F.PV_EOI,
  F.PV_UNHALT,
  F.PV_TLB_FLUSH,
  F.ASYNC_PF_VMEXIT,
  F.PV_SEND_IPI,
  F.POLL_CONTROL,
  F.PV_SCHED_YIELD,
  F.ASYNC_PF_INT,
  F.CLOCKSOURCE_STABLE_BIT,
];
const RUNTIME_KVM_MASK = RUNTIME_KVM_FEATURES.reduce((m, b) => (m | (1 << b)) >>> 0, 0);

/** Leaves whose entries depend on the subleaf (KVM sets SIGNIFICANT_INDEX on them). */
const INDEXED = new Set([4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x1d, 0x1f, 0x8000_001d]);

export interface VcpuCpuidOptions {
  /** Feature names to clear (plan/cpuid.ts). */
  hide: readonly string[];
  /** This vCPU's APIC id (its index). */
  apicId: number;
  /** vCPUs in the machine. */
  cpuCount: number;
  /** KVM_GET_TSC_KHZ, or null when KVM does not know the TSC frequency. */
  tscKhz: number | null;
}

export type CpuVendor = "intel" | "amd" | "other";

/** The vendor string of leaf 0 (EBX, EDX, ECX). Hygon CPUs follow AMD's leaves. */
export function cpuVendor(entries: readonly CpuidEntry[]): CpuVendor {
  const l0 = entries.find((e) => e.function === 0);
  if (!l0) return "other";
  const bytes = new Uint8Array(12);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, l0.ebx, true);
  dv.setUint32(4, l0.edx, true);
  dv.setUint32(8, l0.ecx, true);
  const s = new TextDecoder().decode(bytes);
  if (s === "GenuineIntel") return "intel";
  if (s === "AuthenticAMD" || s === "HygonGenuine") return "amd";
  return "other";
}

/** Looks each name up; an unknown one is a bad Plan (E1006; `lang/` never lowers one). */
export function hiddenFeatures(hide: readonly string[]): CpuidFeature[] {
  return hide.map((name) => {
    const f = Object.hasOwn(CPUID_FEATURES, name) ? CPUID_FEATURES[name] : undefined;
    if (!f) {
      throw new RuntimeError(
        "E1006",
        `cpuid.hide names an unknown feature "${name}"`,
        `known features: ${CPUID_FEATURE_NAMES.join(", ")}`,
      );
    }
    return f;
  });
}

/** Bits needed to number `n` things (ceil(log2 n)); 0 for n <= 1. */
export function countBits(n: number): number {
  let bits = 0;
  while ((1 << bits) < n) bits++;
  return bits;
}

const setBit = (v: number, bit: number, on: boolean) =>
  (on ? v | (1 << bit) : v & ~(1 << bit)) >>> 0;

/** The CPUID table for one vCPU: a new array; `supported` is left as it was. */
export function vcpuCpuid(
  supported: readonly CpuidEntry[],
  o: VcpuCpuidOptions,
): CpuidEntry[] {
  const hidden = hiddenFeatures(o.hide);
  const n = Math.max(o.cpuCount, 1);
  const apicId = o.apicId >>> 0;
  const coreBits = countBits(n);
  const vendor = cpuVendor(supported);
  let out = supported.map((e) => ({ ...e }));
  const leaf = (fn: number) => out.find((e) => e.function === fn);

  for (const e of out) {
    switch (e.function) {
      case 1:
        // EBX: APIC id [31:24], logical processors in the package [23:16]; EDX[28] HTT
        // says that count is valid; ECX[31] hypervisor present.
        e.ebx = ((e.ebx & 0x0000_ffff) | ((apicId & 0xff) << 24) | ((n & 0xff) << 16)) >>> 0;
        e.edx = setBit(e.edx, 28, n > 1);
        e.ecx = setBit(e.ecx, HYPERVISOR_BIT, true);
        break;
      case 4:
        // Deterministic cache parameters: EAX[31:26] cores per package - 1, EAX[25:14]
        // logical processors sharing the cache - 1 (the last level by all, others per core).
        if ((e.eax & 0x1f) !== 0) e.eax = cacheSharing(e.eax, n, true);
        break;
      case 0x8000_0001:
        // CmpLegacy: the leaf-1 logical count is cores, not hyper-threads (AMD).
        if (vendor === "amd") e.ecx = setBit(e.ecx, 1, n > 1);
        break;
      case 0x8000_0008:
        // AMD: ECX[7:0] cores - 1, ECX[15:12] APIC-id bits that number the core.
        if (vendor === "amd") {
          e.ecx = ((e.ecx & ~0xf0ff) | ((n - 1) & 0xff) | ((coreBits & 0xf) << 12)) >>> 0;
        }
        break;
      case 0x8000_001d:
        if ((e.eax & 0x1f) !== 0) e.eax = cacheSharing(e.eax, n, false);
        break;
      case 0x8000_001e:
        // Extended APIC id; core id [7:0] with one thread per core [15:8] = 0; node 0 of 1.
        e.eax = apicId;
        e.ebx = apicId & 0xff;
        e.ecx = 0;
        e.edx = 0;
        break;
      case KVM_CPUID_FEATURES:
        e.eax = kvmFeatures(e.eax);
        e.ebx = 0;
        e.ecx = 0;
        e.edx = 0;
        break;
    }
  }

  // Extended topology: KVM reports one "no topology" subleaf; present SMT and core levels.
  for (const fn of [0xb, 0x1f]) {
    if (!out.some((e) => e.function === fn)) continue;
    out = out.filter((e) => e.function !== fn);
    out.push(...extendedTopology(fn, apicId, n, coreBits));
  }

  // The timing leaf, when the TSC rate is known and constant.
  const signature = leaf(KVM_CPUID_SIGNATURE);
  const invariantTsc = ((leaf(0x8000_0007)?.edx ?? 0) & (1 << 8)) !== 0;
  if (signature && o.tscKhz !== null && o.tscKhz > 0 && invariantTsc) {
    out = out.filter((e) => e.function !== HYPERVISOR_TIMING_LEAF);
    out.push({
      function: HYPERVISOR_TIMING_LEAF,
      index: 0,
      flags: 0,
      eax: o.tscKhz >>> 0,
      ebx: KVM_APIC_BUS_KHZ,
      ecx: 0,
      edx: 0,
    });
    signature.eax = Math.max(signature.eax, HYPERVISOR_TIMING_LEAF);
  }

  for (const e of out) {
    for (const f of hidden) {
      if (f.leaf !== e.function || (INDEXED.has(e.function) && f.subleaf !== e.index)) continue;
      let v = e[f.reg];
      for (const b of f.bits) v = setBit(v, b, false);
      e[f.reg] = v;
    }
  }
  return out;
}

/** KVM's feature word cut down to what this runtime supports. */
function kvmFeatures(supported: number): number {
  let eax = (supported & RUNTIME_KVM_MASK) >>> 0;
  if ((eax & (1 << F.ASYNC_PF_INT)) === 0) eax = setBit(eax, F.ASYNC_PF, false);
  return eax;
}

/**
 * A cache leaf's EAX (4 or 0x8000_001D) for N single-thread cores: the level-3 (last
 * level) cache is shared by all N, lower levels belong to one core. Leaf 4 also carries
 * the cores per package in [31:26].
 */
function cacheSharing(eax: number, n: number, coresField: boolean): number {
  const level = (eax >>> 5) & 7;
  const sharing = level >= 3 ? n - 1 : 0;
  let v = (eax & ~(0xfff << 14)) | ((sharing & 0xfff) << 14);
  if (coresField) v = (v & 0x03ff_ffff) | (((n - 1) & 0x3f) << 26);
  return v >>> 0;
}

/** Leaf 0xB / 0x1F: subleaf 0 the SMT level, 1 the core level, 2 the end of the list. */
function extendedTopology(fn: number, apicId: number, n: number, coreBits: number): CpuidEntry[] {
  const entry = (index: number, eax: number, ebx: number, type: number): CpuidEntry => ({
    function: fn,
    index,
    flags: CPUID_FLAG_SIGNIFICANT_INDEX,
    // EAX[4:0]: APIC-id bits below the next level; EBX[15:0]: logical processors at this
    // level; ECX: [15:8] level type (1 SMT, 2 core, 0 invalid) | [7:0] the subleaf.
    eax,
    ebx,
    ecx: ((type << 8) | index) >>> 0,
    edx: apicId,
  });
  return [entry(0, 0, 1, 1), entry(1, coreBits, n, 2), entry(2, 0, 0, 0)];
}
