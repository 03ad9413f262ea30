/**
 * Nothing left behind: creating and destroying VMs (and whole machines with their vCPU
 * workers) keeps the process's open fds and memory mappings flat, on success and on
 * every failure path of VM creation.
 */
import { equal, ok, rejects } from "node:assert/strict";
import { Vm } from "../../runtime/kvm/vm.ts";
import { Machine } from "../../runtime/machine.ts";
import { RuntimeError } from "../../runtime/errors.ts";
import { exitGuest, flatPlan, haveKvm, MiB, writeTemp } from "./plans.ts";
import type { Plan } from "../../lang/plan/types.ts";

const kvm = haveKvm();
if (!kvm) console.log("skip runtime resource tests: /dev/kvm is absent");

function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}
function mapCount(): number {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => l.length > 0).length;
}
/** Our own mappings: guest RAM and kvm_run pages show up as anon or /dev/kvm-backed lines. */
function kvmMaps(): number {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => /kvm|memfd/.test(l))
    .length;
}

/**
 * The JS engine maps and unmaps heap pages of its own while the test runs (V8 heap chunks,
 * malloc arenas growing), so the total line count may drift by a few lines that are not
 * ours. A leak of the runtime's adds at least one line per VM (hundreds here), so the total
 * may drift this much and no more; kvm_run mappings and fds must match exactly.
 */
const ENGINE_DRIFT = 24;
function assertMapsFlat(before: number, what: string): void {
  const after = mapCount();
  ok(
    after - before <= ENGINE_DRIFT,
    `${what}: /proc/self/maps grew from ${before} to ${after} lines (a leak adds one or more per VM)`,
  );
}

function twoSlotPlan(path: string): Plan {
  const p = flatPlan({ path, ramSize: 4 * MiB });
  p.memslots.push({
    slot: 1,
    name: "ram-high",
    guest_phys: 0x1_0000_0000,
    size: 2 * MiB,
    flags: [],
    backing: { kind: "anonymous" },
  });
  return p;
}

Deno.test({
  name: "200 VMs created and destroyed: fds and mappings stay flat",
  ignore: !kvm,
  async fn() {
    const path = await writeTemp(exitGuest(0));
    try {
      const plan = twoSlotPlan(path);
      // Warm up: the first VM opens libc and grows the JS heap; measure after it.
      (await Vm.create(plan)).close();
      const fd0 = fdCount();
      const maps0 = mapCount();
      const kvm0 = kvmMaps();
      for (let i = 0; i < 200; i++) {
        const vm = await Vm.create(plan);
        equal(vm.vcpus.length, 1);
        vm.memory.write(0x10_0000, exitGuest(i & 0x7f));
        vm.close();
        vm.close(); // idempotent
      }
      equal(fdCount(), fd0, "open fds");
      equal(kvmMaps(), kvm0, "kvm_run mappings");
      assertMapsFlat(maps0, "200 VMs");
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "machines with vCPU workers, run and closed: fds and mappings stay flat",
  ignore: !kvm,
  async fn() {
    const path = await writeTemp(exitGuest(1));
    try {
      const plan = flatPlan({ path, ramSize: 4 * MiB, cpus: 2 });
      const once = async () => {
        using m = await Machine.create(plan);
        const r = await m.run({ timeout: 10 });
        equal(r.exitStatus, 3);
      };
      await once();
      await once();
      // Worker threads release their stacks asynchronously after terminate(); let them go.
      await new Promise((r) => setTimeout(r, 200));
      const fd0 = fdCount();
      const kvm0 = kvmMaps();
      for (let i = 0; i < 10; i++) await once();
      await new Promise((r) => setTimeout(r, 200));
      equal(fdCount(), fd0, "open fds");
      equal(kvmMaps(), kvm0, "kvm_run mappings");
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "a Plan that fails halfway (overlapping memslots) releases what was created",
  ignore: !kvm,
  async fn() {
    const path = await writeTemp(exitGuest(0));
    try {
      const bad = twoSlotPlan(path);
      // Slot 1 overlaps slot 0: KVM refuses it with EEXIST after slot 0 exists.
      bad.memslots[1] = { ...bad.memslots[1], guest_phys: 2 * MiB };
      (await Vm.create(twoSlotPlan(path))).close();
      await rejects(Vm.create(bad)).catch(() => {});
      const fd0 = fdCount();
      const maps0 = mapCount();
      const kvm0 = kvmMaps();
      for (let i = 0; i < 50; i++) {
        await rejects(Vm.create(bad), (e: unknown) => {
          ok(e instanceof RuntimeError);
          equal(e.code, "E1005");
          ok(/KVM_SET_USER_MEMORY_REGION/.test(e.message), e.message);
          return true;
        });
      }
      // A failure later still: an unknown CPUID feature name, after memslots exist.
      const badCpuid = twoSlotPlan(path);
      badCpuid.cpus.cpuid.hide = ["warp"];
      for (let i = 0; i < 20; i++) {
        await rejects(
          Vm.create(badCpuid),
          (e: unknown) => e instanceof RuntimeError && e.code === "E1006",
        );
      }
      equal(fdCount(), fd0, "open fds");
      equal(kvmMaps(), kvm0, "kvm_run mappings");
      assertMapsFlat(maps0, "failed VM creations");
    } finally {
      await Deno.remove(path);
    }
  },
});
