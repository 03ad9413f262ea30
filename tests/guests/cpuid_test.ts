/**
 * CPUID as the guest executes it: the cpuid guest prints the leaves, and each fact the
 * runtime's CPUID policy promises is checked there (runtime/kvm/cpuid_policy.ts has the
 * rules, cpuid_policy_test.ts the unit tests): the hypervisor bit, KVM's signature and
 * features (only those the runtime supports, as far as this KVM offers them), the timing
 * leaf with KVM's TSC rate, and the topology for the machine's vCPU count; hidden names
 * take their bits away.
 */
import assert from "node:assert/strict";
import { guestPlan, kvmTest, runGuest } from "./boot.ts";
import { openKvm, Vm } from "../../runtime/kvm/vm.ts";
import { supportedCpuid, tscKhz } from "../../runtime/kvm/cpuid.ts";
import { KVM_APIC_BUS_KHZ, RUNTIME_KVM_FEATURES } from "../../runtime/kvm/cpuid_policy.ts";
import { KVM_FEATURE } from "../../plan/cpuid.ts";
import { close } from "../../runtime/host/libc.ts";

type Regs = [number, number, number, number];

/** "cpuid LLLLLLLL.S eax=… ebx=… ecx=… edx=…" lines → registers by "leaf.subleaf". */
function parse(output: string): Map<string, Regs> {
  const out = new Map<string, Regs>();
  for (
    const m of output.matchAll(
      /^cpuid ([0-9a-f]{8})\.(\d+) eax=([0-9a-f]{8}) ebx=([0-9a-f]{8}) ecx=([0-9a-f]{8}) edx=([0-9a-f]{8})$/gm,
    )
  ) {
    out.set(`${parseInt(m[1], 16).toString(16)}.${m[2]}`, [
      parseInt(m[3], 16),
      parseInt(m[4], 16),
      parseInt(m[5], 16),
      parseInt(m[6], 16),
    ]);
  }
  return out;
}

const bit = (v: number, b: number) => ((v >>> b) & 1) === 1;
const mask = (bits: readonly number[]) => bits.reduce((m, b) => (m | (1 << b)) >>> 0, 0);

/** What this KVM itself offers in leaf 0x4000_0001 (before the runtime's policy). */
function kvmOffered(): number {
  const fd = openKvm();
  try {
    return supportedCpuid(fd).find((e) => e.function === 0x4000_0001)?.eax ?? 0;
  } finally {
    close(fd);
  }
}

async function boot(machine: string) {
  const { result, output } = await runGuest("cpuid", "cpuid.vmdesc", { machine });
  assert.match(output, /cpuid: done\n$/, output);
  assert.equal(result.exitStatus, 1, result.message);
  return parse(output);
}

kvmTest(
  "guest cpuid: hypervisor bit, KVM's leaves with the supported features, TSC rate",
  async () => {
    const leaves = await boot("cpuid");
    const l1 = leaves.get("1.0")!;
    assert(bit(l1[2], 31), "CPUID.1:ECX.hypervisor");
    assert.equal(l1[1] >>> 24, 0, "APIC id 0");
    assert.equal((l1[1] >>> 16) & 0xff, 1, "one logical processor");
    // (HTT, EDX[28], is not checked here: kvm_pvm shows the host's leaf-1 EDX whatever the
    // table says; the count above is what a guest reads the topology from.)

    const sig = leaves.get("40000000.0")!;
    const name = new Uint8Array(new Uint32Array([sig[1], sig[2], sig[3]]).buffer);
    assert.equal(new TextDecoder().decode(name), "KVMKVMKVM\0\0\0");
    assert(sig[0] >= 0x4000_0001);

    const features = leaves.get("40000001.0")![0];
    const offered = kvmOffered();
    let expected = (offered & mask(RUNTIME_KVM_FEATURES)) >>> 0;
    if (!bit(offered, KVM_FEATURE.ASYNC_PF_INT)) expected &= ~(1 << KVM_FEATURE.ASYNC_PF);
    assert.equal(
      features.toString(16),
      expected.toString(16),
      "KVM's features the runtime supports",
    );
    assert(bit(features, KVM_FEATURE.CLOCKSOURCE2) || !bit(offered, KVM_FEATURE.CLOCKSOURCE2));
    assert.deepEqual(leaves.get("40000001.0")!.slice(1), [0, 0, 0], "no hints");

    // The timing leaf: KVM's TSC rate for this machine's vCPUs, when KVM states one.
    const vm = await Vm.create(guestPlan("cpuid.vmdesc", { machine: "cpuid" }));
    let khz: number | null;
    try {
      khz = tscKhz(vm.kvmFd, vm.vcpus[0].fd);
    } finally {
      vm.close();
    }
    const invariantTsc = bit(leaves.get("80000007.0")?.[3] ?? 0, 8);
    if (khz !== null && invariantTsc) {
      assert.equal(sig[0], 0x4000_0010, "the timing leaf is announced");
      assert.deepEqual(leaves.get("40000010.0")!.slice(0, 2), [khz, KVM_APIC_BUS_KHZ]);
    } else {
      console.log(`no timing leaf: KVM_GET_TSC_KHZ ${khz}, invariant TSC ${invariantTsc}`);
      assert.equal(sig[0], 0x4000_0001, "no timing leaf without a known, invariant TSC rate");
    }
  },
);

kvmTest("guest cpuid: two vCPUs are two cores; hidden names lose their bits", async () => {
  const leaves = await boot("cpuid_hidden");
  const l1 = leaves.get("1.0")!;
  assert(!bit(l1[2], 31), "hypervisor hidden");
  assert.equal((l1[1] >>> 16) & 0xff, 2, "two logical processors");
  assert(bit(l1[3], 28), "HTT");
  const f = leaves.get("40000001.0")![0];
  for (const b of [0, 3, 6, 7]) assert(!bit(f, b), `KVM feature bit ${b} hidden`);
  if (leaves.has("b.1")) {
    assert.deepEqual(leaves.get("b.0")!.slice(0, 3), [0, 1, 0x100], "SMT level: one thread");
    assert.deepEqual(leaves.get("b.1")!.slice(0, 3), [1, 2, 0x201], "core level: two cores");
    assert.equal(leaves.get("b.2")![2] & 0xff00, 0, "then the end of the list");
  }
});
