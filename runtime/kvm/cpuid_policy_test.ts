import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  countBits,
  type CpuidEntry,
  cpuVendor,
  KVM_APIC_BUS_KHZ,
  vcpuCpuid,
  type VcpuCpuidOptions,
} from "./cpuid_policy.ts";
import { decodeCpuid, encodeCpuid } from "./cpuid.ts";
import { RuntimeError } from "../errors.ts";
import { CPUID_FEATURES, KVM_FEATURE } from "../../plan/cpuid.ts";

const e = (fn: number, index: number, regs: Partial<CpuidEntry> = {}): CpuidEntry => ({
  function: fn,
  index,
  flags: 0,
  eax: 0,
  ebx: 0,
  ecx: 0,
  edx: 0,
  ...regs,
});

/** Vendor string → leaf 0 registers (EBX, EDX, ECX order). */
function leaf0(vendor: string, max: number): CpuidEntry {
  const b = new TextEncoder().encode(vendor);
  const dv = new DataView(b.buffer);
  return e(0, 0, {
    eax: max,
    ebx: dv.getUint32(0, true),
    edx: dv.getUint32(4, true),
    ecx: dv.getUint32(8, true),
  });
}

/** KVM's feature word as 6.1 reports it, plus three bits the runtime must not pass on. */
const KVM_SUPPORTED_FEATURES = 0x0100_7efb | (1 << 15) | (1 << 16) | (1 << 17);

/** A trimmed KVM_GET_SUPPORTED_CPUID of an Intel host (this machine's, reduced). */
function intelTable(): CpuidEntry[] {
  return [
    leaf0("GenuineIntel", 0x1f),
    e(1, 0, { eax: 0xa0671, ebx: 0x0102_0800, ecx: 0x0120_2000, edx: 0x0f8b_fbff }),
    e(4, 0, { flags: 1, eax: 0x0400_0121, ebx: 0x02c0_003f, ecx: 0x3f }),
    e(4, 1, { flags: 1, eax: 0x0400_0122, ebx: 0x03c0_003f, ecx: 0x3f }),
    e(4, 2, { flags: 1, eax: 0x0400_0143, ebx: 0x03c0_003f, ecx: 0x7ff }),
    e(4, 3, { flags: 1, eax: 0x0400_4163, ebx: 0x03c0_003f, ecx: 0x77fff }),
    e(4, 4, { flags: 1 }),
    e(0xb, 0, { flags: 1, edx: 1 }),
    e(0x1f, 0, { flags: 1, edx: 1 }),
    e(0x4000_0000, 0, { eax: 0x4000_0001, ebx: 0x4b4d_564b, ecx: 0x564b_4d56, edx: 0x4d }),
    e(0x4000_0001, 0, { eax: KVM_SUPPORTED_FEATURES, edx: 1 }),
    e(0x8000_0000, 0, { eax: 0x8000_0008 }),
    e(0x8000_0001, 0, { ecx: 0x101, edx: 0x2010_0800 }),
    e(0x8000_0007, 0, { edx: 0x100 }),
    e(0x8000_0008, 0, { eax: 0x3930 }),
  ];
}

/** An AMD host's table (EPYC-like cache leaves, TOPOEXT), as KVM reports it. */
function amdTable(): CpuidEntry[] {
  return [
    leaf0("AuthenticAMD", 0xd),
    e(1, 0, { eax: 0x00a0_0f11, ebx: 0x0010_0800, ecx: 0x7ed8_320b, edx: 0x178b_fbff }),
    e(0xb, 0, { flags: 1 }),
    e(0x4000_0000, 0, { eax: 0x4000_0001, ebx: 0x4b4d_564b, ecx: 0x564b_4d56, edx: 0x4d }),
    e(0x4000_0001, 0, { eax: KVM_SUPPORTED_FEATURES }),
    e(0x8000_0001, 0, { ecx: 0x0040_03f1, edx: 0x2fd3_fbff }),
    e(0x8000_0007, 0, { edx: 0x100 }),
    e(0x8000_0008, 0, { eax: 0x3030, ecx: 0x0000_703f }),
    e(0x8000_001d, 0, { flags: 1, eax: 0x0000_4121, ebx: 0x01c0_003f, ecx: 0x3f }),
    e(0x8000_001d, 1, { flags: 1, eax: 0x0000_4122, ebx: 0x01c0_003f, ecx: 0x3f }),
    e(0x8000_001d, 2, { flags: 1, eax: 0x0000_4143, ebx: 0x01c0_003f, ecx: 0x3ff }),
    e(0x8000_001d, 3, { flags: 1, eax: 0x0003_c163, ebx: 0x03c0_003f, ecx: 0x7fff }),
    e(0x8000_001d, 4, { flags: 1 }),
    e(0x8000_001e, 0, {}),
  ];
}

const opts = (o: Partial<VcpuCpuidOptions> = {}): VcpuCpuidOptions => ({
  hide: [],
  apicId: 0,
  cpuCount: 1,
  tscKhz: null,
  ...o,
});
const get = (t: CpuidEntry[], fn: number, index = 0) =>
  t.find((x) => x.function === fn && x.index === index);
const bit = (v: number, b: number) => ((v >>> b) & 1) === 1;

Deno.test("cpuid: the hypervisor bit is set, and hiding `hypervisor` clears it", () => {
  assert(!bit(get(intelTable(), 1)!.ecx, 31), "the fixture starts without it");
  assert(bit(get(vcpuCpuid(intelTable(), opts()), 1)!.ecx, 31));
  assert(!bit(get(vcpuCpuid(intelTable(), opts({ hide: ["hypervisor"] })), 1)!.ecx, 31));
});

Deno.test("cpuid: KVM's signature passes through; its features only as far as supported", () => {
  const t = vcpuCpuid(intelTable(), opts());
  const sig = get(t, 0x4000_0000)!;
  const name = new Uint8Array(12);
  const dv = new DataView(name.buffer);
  [sig.ebx, sig.ecx, sig.edx].forEach((r, i) => dv.setUint32(4 * i, r, true));
  assertEquals(new TextDecoder().decode(name), "KVMKVMKVM\0\0\0");
  assertEquals(sig.eax, 0x4000_0001);
  const f = get(t, 0x4000_0001)!;
  assertEquals(f.eax, 0x0100_7efb, "MSI_EXT_DEST_ID, HC_MAP_GPA_RANGE and MIGRATION_CONTROL gone");
  assertEquals(f.edx, 0, "no REALTIME hint: nothing pins the vCPUs");
});

Deno.test("cpuid: legacy async PF only together with ASYNC_PF_INT", () => {
  const table = intelTable();
  get(table, 0x4000_0001)!.eax &= ~(1 << KVM_FEATURE.ASYNC_PF_INT);
  const f = get(vcpuCpuid(table, opts()), 0x4000_0001)!;
  assert(!bit(f.eax, KVM_FEATURE.ASYNC_PF));
  assert(bit(f.eax, KVM_FEATURE.PV_EOI));
});

Deno.test("cpuid: PV features hide by name; `kvmclock` takes both clock MSR sets", () => {
  const f = (hide: string[]) => get(vcpuCpuid(intelTable(), opts({ hide })), 0x4000_0001)!.eax;
  const all = f([]);
  assertEquals(all ^ f(["kvmclock"]), (1 << 0) | (1 << 3));
  assertEquals(all ^ f(["kvm_pv_eoi"]), 1 << 6);
  assertEquals(all ^ f(["kvm_pv_unhalt"]), 1 << 7);
  assertEquals(all ^ f(["kvm_asyncpf"]), (1 << 4) | (1 << 14));
  assertEquals(all ^ f(["kvm_steal_time", "kvm_pv_ipi"]), (1 << 5) | (1 << 11));
  for (const [name, feat] of Object.entries(CPUID_FEATURES)) {
    if (feat.leaf !== 0x4000_0001) continue;
    assert(f([name]) !== all, `hiding ${name} changes nothing`);
  }
});

Deno.test("cpuid: the timing leaf carries the TSC rate when it is known and invariant", () => {
  const t = vcpuCpuid(intelTable(), opts({ tscKhz: 2_900_000 }));
  assertEquals(get(t, 0x4000_0000)!.eax, 0x4000_0010);
  const timing = get(t, 0x4000_0010)!;
  assertEquals([timing.eax, timing.ebx], [2_900_000, KVM_APIC_BUS_KHZ]);
  // unknown rate: no leaf, the highest leaf stays KVM's
  const none = vcpuCpuid(intelTable(), opts({ tscKhz: null }));
  assertEquals(get(none, 0x4000_0010), undefined);
  assertEquals(get(none, 0x4000_0000)!.eax, 0x4000_0001);
  // a TSC that is not invariant has no single rate to state
  const varying = intelTable();
  get(varying, 0x8000_0007)!.edx = 0;
  assertEquals(get(vcpuCpuid(varying, opts({ tscKhz: 2_900_000 })), 0x4000_0010), undefined);
});

Deno.test("cpuid: three vCPUs on Intel are three cores of one package, whichever leaf asks", () => {
  for (let id = 0; id < 3; id++) {
    const t = vcpuCpuid(intelTable(), opts({ apicId: id, cpuCount: 3 }));
    const l1 = get(t, 1)!;
    assertEquals(l1.ebx >>> 24, id, "leaf 1 APIC id");
    assertEquals((l1.ebx >>> 16) & 0xff, 3, "leaf 1 logical processor count");
    assertEquals(l1.ebx & 0xffff, 0x0800, "brand index and CLFLUSH size kept");
    assert(bit(l1.edx, 28), "HTT: the count is valid");
    for (const fn of [0xb, 0x1f]) {
      const levels = t.filter((x) => x.function === fn).sort((a, b) => a.index - b.index);
      assertEquals(levels.map((x) => [x.index, x.eax, x.ebx, x.ecx, x.edx, x.flags]), [
        [0, 0, 1, 0x100, id, 1], // SMT: one thread per core
        [1, 2, 3, 0x201, id, 1], // core: 3 cores, 2 APIC-id bits
        [2, 0, 0, 0x002, id, 1], // end of the list
      ]);
    }
    const caches = t.filter((x) => x.function === 4 && (x.eax & 0x1f) !== 0);
    assertEquals(caches.length, 4);
    for (const c of caches) {
      assertEquals(c.eax >>> 26, 2, "cores per package - 1");
      const level = (c.eax >>> 5) & 7;
      assertEquals((c.eax >>> 14) & 0xfff, level === 3 ? 2 : 0, `L${level} sharing`);
      assertEquals(c.eax & 0x3fff, get(intelTable(), 4, c.index)!.eax & 0x3fff);
    }
  }
});

Deno.test("cpuid: one vCPU: no HTT, a core level of one", () => {
  const t = vcpuCpuid(intelTable(), opts());
  assert(!bit(get(t, 1)!.edx, 28));
  assertEquals((get(t, 1)!.ebx >>> 16) & 0xff, 1);
  assertEquals([get(t, 0xb, 1)!.eax, get(t, 0xb, 1)!.ebx], [0, 1]);
  for (const c of t.filter((x) => x.function === 4 && (x.eax & 0x1f) !== 0)) {
    assertEquals(c.eax >>> 14, 0);
  }
});

Deno.test("cpuid: two vCPUs on AMD: core count, APIC-id bits, CmpLegacy, topology leaves", () => {
  for (let id = 0; id < 2; id++) {
    const t = vcpuCpuid(amdTable(), opts({ apicId: id, cpuCount: 2 }));
    const l8 = get(t, 0x8000_0008)!;
    assertEquals(l8.ecx & 0xff, 1, "NC = cores - 1");
    assertEquals((l8.ecx >>> 12) & 0xf, 1, "ApicIdCoreIdSize");
    assertEquals(l8.eax, 0x3030, "address sizes kept");
    assert(bit(get(t, 0x8000_0001)!.ecx, 1), "CmpLegacy");
    assert(bit(get(t, 0x8000_0001)!.ecx, 22), "TOPOEXT kept");
    const l1e = get(t, 0x8000_001e)!;
    assertEquals([l1e.eax, l1e.ebx & 0xff, (l1e.ebx >>> 8) & 0xff, l1e.ecx], [id, id, 0, 0]);
    for (const c of t.filter((x) => x.function === 0x8000_001d && (x.eax & 0x1f) !== 0)) {
      const level = (c.eax >>> 5) & 7;
      assertEquals((c.eax >>> 14) & 0xfff, level === 3 ? 1 : 0, `L${level} sharing`);
    }
    assertEquals(get(t, 0xb, 1)!.ebx, 2);
    assertEquals(get(t, 1)!.ebx >>> 24, id);
  }
  const one = vcpuCpuid(amdTable(), opts());
  assert(!bit(get(one, 0x8000_0001)!.ecx, 1), "no CmpLegacy for one core");
  assertEquals(get(one, 0x8000_0008)!.ecx & 0xf0ff, 0);
});

Deno.test("cpuid: topology leaves KVM did not report are not invented", () => {
  const t = vcpuCpuid(amdTable(), opts({ cpuCount: 2 }));
  assertEquals(t.filter((x) => x.function === 0x1f).length, 0);
  assertEquals(t.filter((x) => x.function === 4).length, 0);
  // vendor-specific rewrites stay with their vendor
  const intel = vcpuCpuid(intelTable(), opts({ cpuCount: 2 }));
  assertEquals(get(intel, 0x8000_0008)!.ecx, 0);
  assert(!bit(get(intel, 0x8000_0001)!.ecx, 1));
});

Deno.test("cpuid: hiding works per leaf and subleaf; the supported table is left alone", () => {
  const table = intelTable();
  const before = structuredClone(table);
  const t = vcpuCpuid(table, opts({ hide: ["cx16", "x2apic", "ht"], cpuCount: 2 }));
  assert(!bit(get(t, 1)!.ecx, 13));
  assert(!bit(get(t, 1)!.ecx, 21));
  assert(!bit(get(t, 1)!.edx, 28), "a hidden `ht` wins over the topology");
  assertEquals(table, before);
});

Deno.test("cpuid: an unknown name is E1006", () => {
  assertThrows(
    () => vcpuCpuid(intelTable(), opts({ hide: ["kvmclok"] })),
    (err: unknown) => err instanceof RuntimeError && err.code === "E1006",
  );
});

Deno.test("cpuid: vendor strings and bit counts", () => {
  assertEquals(cpuVendor(intelTable()), "intel");
  assertEquals(cpuVendor(amdTable()), "amd");
  assertEquals(cpuVendor([leaf0("HygonGenuine", 0xd)]), "amd");
  assertEquals(cpuVendor([leaf0("VIA VIA VIA ", 0xd)]), "other");
  assertEquals([1, 2, 3, 4, 5, 255].map(countBits), [0, 1, 2, 2, 3, 8]);
});

Deno.test("cpuid: kvm_cpuid2 buffers round-trip", () => {
  const t = vcpuCpuid(intelTable(), opts({ cpuCount: 4, apicId: 3, tscKhz: 1_000_000 }));
  assertEquals(decodeCpuid(encodeCpuid(t)), t);
});
