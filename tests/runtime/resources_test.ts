/**
 * Nothing left behind: creating and destroying VMs (and whole machines with their vCPU
 * workers) keeps the process's open fds and memory mappings flat, on success and on
 * every failure path of VM creation.
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { Vm } from "../../runtime/kvm/vm.ts";
import { Machine } from "../../runtime/machine.ts";
import { RuntimeError } from "../../runtime/errors.ts";
import { exitGuest, flatPlan, MiB, writeTemp } from "./plans.ts";
import { skipReason } from "../skip.ts";
import * as host from "../../runtime/host/libc.ts";
import type { Plan } from "../../plan/types.ts";
import { workersGone, workerThreads } from "../util/workers.ts";

const kvm = skipReason("runtime resource tests", { kvm: true }) === null;

function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

interface MapLine {
  lo: bigint;
  hi: bigint;
  path: string;
}
function maps(): MapLine[] {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").flatMap((l) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(l);
    return m ? [{ lo: BigInt("0x" + m[1]), hi: BigInt("0x" + m[2]), path: m[3] }] : [];
  });
}

/**
 * What vmdesc can leak, counted exactly. The JS engine maps and unmaps heap pages of its
 * own all the time, so the total line count of /proc/self/maps says nothing; instead:
 * - kvm_run pages: the only mappings backed by `anon_inode:kvm-vcpu:N`;
 * - memfd mappings (the shadow hole's all-ones chunk): `/memfd:` lines;
 * - every range the runtime mapped and has not unmapped (runtime/host/libc.ts keeps the
 *   list); each range listed while a VM lives is checked against the kernel's view below.
 */
function ours(): { vcpuMaps: number; memfdMaps: number; live: string[] } {
  const lines = maps();
  return {
    vcpuMaps: lines.filter((l) => l.path.startsWith("anon_inode:kvm-vcpu")).length,
    memfdMaps: lines.filter((l) => l.path.startsWith("/memfd:")).length,
    live: host.liveMappings().map((r) => `${r.addr.toString(16)}-${r.end.toString(16)}`),
  };
}

/**
 * Ranges still mapped in the kernel's view: a line that covers the whole range. A leaked
 * mapping keeps its range (or is merged into a larger line that still covers it); a
 * mapping of the engine's that reuses the freed hole does not cover a whole guest-RAM range
 * of a MiB or more, so only those are checked here (kvm_run pages are counted above).
 */
function stillMapped(ranges: { addr: bigint; end: bigint }[]): string[] {
  const lines = maps();
  return ranges.filter((r) => r.end - r.addr >= BigInt(MiB))
    .filter((r) => lines.some((l) => l.lo <= r.addr && l.hi >= r.end))
    .map((r) => `${r.addr.toString(16)}-${r.end.toString(16)}`);
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
      // A machine with vCPU workers closed just before: its threads are still ending (as
      // an earlier test file's may be) and must not be counted.
      (await Machine.create(flatPlan({ path, cpus: 2 }))).close();
      await workersGone();
      const fd0 = fdCount();
      const ours0 = ours();
      for (let i = 0; i < 200; i++) {
        const vm = await Vm.create(plan);
        equal(vm.vcpus.length, 1);
        vm.memory.write(0x10_0000, exitGuest(i & 0x7f));
        const mine = host.liveMappings().filter((r) =>
          !ours0.live.includes(`${r.addr.toString(16)}-${r.end.toString(16)}`)
        );
        if (i === 0) {
          // The detector sees what it must: both RAM slots while the VM lives.
          equal(stillMapped(mine).length, 2, "guest RAM slots mapped while the VM lives");
        }
        vm.close();
        vm.close(); // idempotent
        deepEqual(stillMapped(mine), [], `VM ${i}: guest RAM still mapped after close`);
      }
      equal(fdCount(), fd0, "open fds");
      deepEqual(ours(), ours0, "kvm_run, memfd and runtime mappings");
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
      // Worker threads end (and close their runtimes' fds) after terminate(): wait for them.
      await workersGone();
      const fd0 = fdCount();
      const ours0 = ours();
      for (let i = 0; i < 10; i++) await once();
      // No wait here: close() joins the vCPU threads (see the next test).
      equal(fdCount(), fd0, "open fds");
      deepEqual(ours(), ours0, "kvm_run, memfd and runtime mappings");
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "close() joins the vCPU worker threads: none of them, nor their fds, outlives it",
  ignore: !kvm,
  async fn() {
    const path = await writeTemp(exitGuest(1));
    // Busy processes make the scheduler slow to finish a terminated worker's thread: the
    // case in which a thread not joined still held its fds after close() returned.
    const busy = [0, 1, 2].map(() =>
      new Deno.Command("sh", {
        args: ["-c", "while :; do :; done"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn()
    );
    try {
      const plan = flatPlan({ path, ramSize: 4 * MiB, cpus: 2 });
      await workersGone();
      const fd0 = fdCount();
      for (let i = 0; i < 20; i++) {
        const m = await Machine.create(plan);
        equal((await m.run({ timeout: 10 })).exitStatus, 3);
        m.close();
        equal(workerThreads(), 0, `machine ${i}: a vCPU thread outlived close()`);
        equal(fdCount(), fd0, `machine ${i}: open fds after close()`);
      }
    } finally {
      for (const b of busy) {
        b.kill();
        await b.status;
      }
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
      await Vm.create(bad).then((vm) => vm.close(), () => {}); // warm-up: the first failure
      await workersGone();
      const fd0 = fdCount();
      const ours0 = ours();
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
      deepEqual(ours(), ours0, "kvm_run, memfd and runtime mappings");
    } finally {
      await Deno.remove(path);
    }
  },
});
