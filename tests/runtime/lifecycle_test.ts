/**
 * The machine's lifecycle on the real /dev/kvm (runtime/lifecycle.ts): the states a run
 * goes through, actions refused in the wrong state, and pause/resume with both drivers:
 * paused, every vCPU is out of KVM_RUN and parked (a guest counting in memory stops
 * counting), resumed it goes on, a paused machine can still be stopped, and pausing
 * again and again leaves no thread, fd or mapping behind.
 */
import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { Machine, type StateChange } from "../../runtime/machine.ts";
import { StateError } from "../../runtime/lifecycle.ts";
import { exitGuest, flatPlan, withGuest } from "./plans.ts";
import { skipReason } from "../skip.ts";

const kvm = skipReason("machine lifecycle tests", { kvm: true }) === null;
if (!kvm) console.log("skip lifecycle tests: /dev/kvm is absent");
const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !kvm, fn });

const COUNTER = 0x20_0000;
/** Every vCPU: `lock inc dword [0x200000]` forever, no exits. */
const COUNT_GUEST = new Uint8Array([
  ...[0xf0, 0xff, 0x05, 0x00, 0x00, 0x20, 0x00], // lock inc dword [0x200000]
  ...[0xeb, 0xf7], // jmp back
]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when `p` settles within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

function counter(m: Machine): number {
  return new DataView(m.memory.read(COUNTER, 4).buffer).getUint32(0, true);
}

/** Waits (up to 5 s) until the guest's counter moves. */
async function counting(m: Machine): Promise<void> {
  const c0 = counter(m);
  for (let i = 0; i < 500 && counter(m) === c0; i++) await sleep(10);
  ok(counter(m) !== c0, "the guest counts");
}

test("lifecycle: a run goes created → running → stopping → exited; wrong-state actions are refused", async () => {
  await withGuest(exitGuest(5), async (path) => {
    const m = await Machine.create(flatPlan({ path }));
    const changes: string[] = [];
    m.onStateChange(({ from, to }: StateChange) => changes.push(`${from}→${to}`));
    equal(m.state, "created");
    deepEqual(m.vcpuStates, ["ready"]);
    await rejects(m.pause(), (e: unknown) => e instanceof StateError && e.state === "created");
    await rejects(m.resume(), StateError);
    const r = await m.run({ timeout: 10 });
    equal(r.exitStatus, 11);
    equal(m.state, "exited");
    deepEqual(m.vcpuStates, ["exited"]);
    deepEqual(changes, ["created→running", "running→stopping", "stopping→exited"]);
    throws(() => m.run(), (e: unknown) => e instanceof StateError && /runs once/.test(e.message));
    await rejects(m.pause(), StateError);
    m.close();
    equal(m.state, "exited");
    throws(() => m.run(), /machine is closed/);
  });
  await withGuest(exitGuest(5), async (path) => {
    const m = await Machine.create(flatPlan({ path }), { vcpuThread: "caller" });
    const changes: string[] = [];
    m.onStateChange(({ from, to }) => changes.push(`${from}→${to}`));
    m.close();
    deepEqual(changes, ["created→exited"], "closed before it ran");
  });
});

for (const mode of ["worker", "caller"] as const) {
  const cpus = mode === "worker" ? 2 : 1;
  test(`lifecycle (${mode}, ${cpus} vCPU): paused, the guest stops counting; resumed, it goes on`, async () => {
    await withGuest(COUNT_GUEST, async (path) => {
      using m = await Machine.create(flatPlan({ path, cpus }), {
        vcpuThread: mode,
        apsAtEntry: true,
      });
      const changes: string[] = [];
      m.onStateChange(({ to }) => changes.push(to));
      const ac = new AbortController();
      const running = m.run({ signal: ac.signal, timeout: 60 });
      await counting(m);
      await m.pause();
      equal(m.state, "paused");
      deepEqual(m.vcpuStates, new Array(cpus).fill("paused"));
      const c1 = counter(m);
      await sleep(100);
      equal(counter(m), c1, "no vCPU runs while paused");
      await rejects(m.pause(), StateError, "already paused");
      await m.resume();
      equal(m.state, "running");
      await counting(m);
      // Paused again, then stopped while paused: the parked threads leave.
      await m.pause();
      ac.abort();
      const r = await running;
      equal(r.reason, "aborted");
      equal(r.exitStatus, 8);
      equal(m.state, "exited");
      deepEqual(m.vcpuStates, new Array(cpus).fill("exited"));
      deepEqual(changes, ["running", "paused", "running", "paused", "stopping", "exited"]);
      equal(r.stats.vcpus.length, cpus, "every vCPU reported its numbers");
    });
  });
}

test("lifecycle: a pause overtaken by close() is refused; close() while paused ends the run", async () => {
  await withGuest(COUNT_GUEST, async (path) => {
    // When every vCPU parks before pause() returns (they run in parallel with it), the
    // pause is complete and close() overtakes nothing: that run does not test this; again.
    for (let attempt = 0;; attempt++) {
      const m = await Machine.create(flatPlan({ path, cpus: 2 }), { apsAtEntry: true });
      const running = m.run({ timeout: 60 });
      await counting(m);
      const pausing = m.pause();
      const pausedAtOnce = m.state === "paused";
      m.close();
      const r = await running;
      equal(r.message, "machine closed while running");
      if (pausedAtOnce && attempt < 10) {
        await pausing;
        continue;
      }
      equal(r.reason, "aborted");
      await rejects(
        pausing,
        (e: unknown) => e instanceof StateError && /stopped while pausing/.test(e.message),
      );
      break;
    }
  });
  await withGuest(COUNT_GUEST, async (path) => {
    const m = await Machine.create(flatPlan({ path }), { vcpuThread: "caller" });
    const running = m.run({ timeout: 60 });
    await counting(m);
    await m.pause();
    m.close();
    const r = await running;
    equal(r.message, "machine closed while running");
    equal(m.state, "exited");
  });
});

test("lifecycle: paused time does not count toward the timeout", async () => {
  for (const mode of ["worker", "caller"] as const) {
    await withGuest(COUNT_GUEST, async (path) => {
      using m = await Machine.create(flatPlan({ path }), { vcpuThread: mode });
      const t0 = performance.now();
      const running = m.run({ timeout: 0.5 });
      await m.pause();
      const pausedAt = performance.now();
      let ended = false;
      running.then(() => ended = true);
      await sleep(1000);
      equal(m.state, "paused", `${mode}: still paused after twice the timeout`);
      ok(!ended, `${mode}: the run did not time out while paused`);
      const resumed = performance.now();
      await m.resume();
      const r = await running;
      const ran = performance.now() - resumed;
      equal(r.reason, "timeout", mode);
      // The guest runs out what is left of its 0.5 s after the resume: what it ran before
      // the pause took effect (at most pausedAt - t0, long on a loaded host) counts, the
      // pause does not (timers may fire a fraction of a millisecond early).
      const before = pausedAt - t0;
      ok(
        ran >= 500 - before - 20 && ran < 3000,
        `${mode}: ran ${ran.toFixed(0)} ms after the resume, up to ${before.toFixed(0)} before`,
      );
      const t = m.times!;
      ok(t.uptimeMs - t.pausedMs >= 480, `${mode}: ran ${t.uptimeMs - t.pausedMs} ms in all`);
      ok(t.pausedMs >= 1000, `${mode}: ${t.pausedMs.toFixed(0)} ms paused`);
      ok(Math.abs(t.uptimeMs - (performance.now() - t0)) < 50, `${mode}: uptime frozen at the end`);
    });
  }
});

test("lifecycle: pause/resume while APs' port I/O is forwarded to vCPU 0 never deadlocks", async () => {
  // Every vCPU: `in al, 0x80` (unclaimed; an AP's goes through vCPU 0's mailbox), count.
  const guest = new Uint8Array([
    ...[0xe4, 0x80], // in al, 0x80
    ...[0xf0, 0xff, 0x05, 0x00, 0x00, 0x20, 0x00], // lock inc dword [0x200000]
    ...[0xeb, 0xf5], // jmp back
  ]);
  await withGuest(guest, async (path) => {
    using m = await Machine.create(flatPlan({ path, cpus: 3 }), { apsAtEntry: true });
    const ac = new AbortController();
    const running = m.run({ signal: ac.signal, timeout: 120 });
    for (let i = 0; i < 30; i++) {
      await counting(m);
      // Within a bounded time, or the forwarding and the parking wait on each other.
      ok(await within(m.pause(), 10_000), `pause ${i} completed`);
      const c = counter(m);
      await sleep(5);
      equal(counter(m), c, `pause ${i}: nothing runs`);
      await m.resume();
    }
    ac.abort();
    const r = await running;
    equal(r.reason, "aborted");
    ok(r.stats.forwarded > 0, `accesses forwarded: ${r.stats.forwarded}`);
  });
});

/** Worker threads and open fds of this process right now. */
function resources(): { workers: number; fds: number } {
  const workers = [...Deno.readDirSync("/proc/self/task")].filter((t) => {
    try {
      return Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).startsWith("worker-");
    } catch {
      return false; // gone while listing
    }
  }).length;
  return { workers, fds: [...Deno.readDirSync("/proc/self/fd")].length };
}

test("lifecycle: 50 pause/resume cycles on 2 vCPUs leave no thread or fd behind", async () => {
  await withGuest(COUNT_GUEST, async (path) => {
    const plan = flatPlan({ path, cpus: 2 });
    const m = await Machine.create(plan, { apsAtEntry: true });
    const ac = new AbortController();
    const running = m.run({ signal: ac.signal, timeout: 120 });
    await counting(m);
    const before = resources();
    for (let i = 0; i < 50; i++) {
      await m.pause();
      await m.resume();
    }
    await counting(m);
    deepEqual(resources(), before, "worker threads and fds while running");
    ac.abort();
    equal((await running).reason, "aborted");
    m.close();
  });
});
