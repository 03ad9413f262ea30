/**
 * `vcpuThread: "caller"`: a 1-vCPU machine's loop on the calling thread (what `vmdesc boot`
 * uses). The thread sits in KVM_RUN, so everything that must reach it goes through the
 * tick timer: timeouts, AbortSignals and close() from timers, output flushes, stdin (polled
 * and subscribed), and nothing may be left behind (fds, mappings, POSIX timers).
 */
import { equal, match, ok } from "node:assert/strict";
import { Machine } from "../../runtime/machine.ts";
import { createMachine } from "../../runtime/mod.ts";
import type { InputSource } from "../../runtime/devices/device.ts";
import * as host from "../../runtime/host/libc.ts";
import { exitGuest, flatPlan, haveKvm, serialDevice, spinGuest, withGuest } from "./plans.ts";
import { runGuest } from "../guests/boot.ts";
import { buildGuests } from "../../examples/guests/build.ts";

const kvm = haveKvm();
if (!kvm) console.log("skip caller-thread tests: /dev/kvm is absent");
const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !kvm, fn });
const caller = { vcpuThread: "caller" as const };

/** POSIX timers this process holds (the tick timer must be deleted after every run). */
function posixTimers(): number {
  return Deno.readTextFileSync("/proc/self/timers").split("\n")
    .filter((l) => l.startsWith("ID:")).length;
}

/** This process's fds on KVM objects and memfds (other tests' fds may come and go). */
function kvmFds(): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (/kvm|memfd/.test(Deno.readLinkSync(`/proc/self/fd/${e.name}`))) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/** Threads of this process: a caller-mode run must not start any (no vCPU worker). */
function threads(): number {
  return [...Deno.readDirSync("/proc/self/task")].length;
}

test("caller thread: debug_exit ends the run; no worker thread is started", async () => {
  await withGuest(exitGuest(7), async (path) => {
    const before = threads();
    using m = await Machine.create(flatPlan({ path }), caller);
    equal(threads(), before, "no thread for the vCPU");
    const r = await m.run({ timeout: 10 });
    equal(r.reason, "debug_exit");
    equal(r.exitStatus, 15);
    equal(r.stats.vcpus.length, 1);
    equal(r.stats.devices.find((d) => d.id === "debug_exit")?.pio_exits, 1);
  });
});

test("caller thread: the tick stops a guest spinning without exits at the timeout", async () => {
  await withGuest(spinGuest(), async (path) => {
    using m = await Machine.create(flatPlan({ path }), caller);
    const t0 = performance.now();
    const r = await m.run({ timeout: 0.3 });
    const took = performance.now() - t0;
    equal(r.reason, "timeout");
    equal(r.exitStatus, 6);
    ok(took >= 300 && took < 2000, `stopped after ${took.toFixed(0)} ms`);
    ok((r.stats.exits.intr ?? 0) >= 5, `ticks seen: ${r.stats.exits.intr}`);
  });
});

test("caller thread: an AbortSignal fired by a timer, and close() from a timer, stop the guest", async () => {
  await withGuest(spinGuest(), async (path) => {
    using m = await Machine.create(flatPlan({ path }), caller);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    const r = await m.run({ signal: ac.signal });
    equal(r.reason, "aborted");
    equal(r.exitStatus, 8);
  });
  await withGuest(spinGuest(), async (path) => {
    const m = await Machine.create(flatPlan({ path }), caller);
    const running = m.run();
    setTimeout(() => m.close(), 150);
    const r = await running;
    equal(r.reason, "aborted");
    match(r.message, /closed while running/);
  });
});

test("caller thread: timers keep firing while the guest spins (every turn runs the due ones)", async () => {
  await withGuest(spinGuest(), async (path) => {
    using m = await Machine.create(flatPlan({ path }), caller);
    let fires = 0;
    const interval = setInterval(() => fires++, 50);
    const r = await m.run({ timeout: 1.5 });
    clearInterval(interval);
    equal(r.reason, "timeout");
    // The event loop turns every 100 ms: ~14 turns, each with the interval due. Turns that
    // went straight back into KVM_RUN from the ops phase fired it once or twice in all.
    ok(fires >= 5, `the interval fired ${fires} times in 1.5 s`);
  });
});

test("caller thread: output without a newline is flushed by the tick while the guest spins", async () => {
  // "ok>" on COM1 (no newline), then spin without exits: only a tick can flush it.
  const code = new Uint8Array([
    ...[0x66, 0xba, 0xf8, 0x03], // mov dx, 0x3f8
    ...[0xb0, 0x6f, 0xee, 0xb0, 0x6b, 0xee, 0xb0, 0x3e, 0xee], // 'o' 'k' '>'
    ...[0xeb, 0xfe], // jmp $
  ]);
  await withGuest(code, async (path) => {
    const plan = flatPlan({ path });
    plan.devices.unshift(serialDevice());
    let out = "";
    const ac = new AbortController();
    using m = await Machine.create(plan, {
      ...caller,
      output: (_id, b) => {
        out += new TextDecoder().decode(b);
        ac.abort();
      },
    });
    const r = await m.run({ signal: ac.signal, timeout: 10 });
    equal(r.reason, "aborted", "stopped by the flushed output, not the timeout");
    equal(out, "ok>");
  });
});

test("caller thread: stdin reaches the guest, subscribed (a string) and polled (openPolled)", async () => {
  const subscribed = await runGuest("echo", "echo.vmdesc", {
    stdin: "vmdesc\n",
    timeout: 20,
    ...caller,
  });
  equal(subscribed.output, "echo: ready (interrupts)\necho: vmdesc\n");
  equal(subscribed.result.debugValue, 6);

  let polls = 0;
  let closed = 0;
  const pending = [new TextEncoder().encode("pol"), new TextEncoder().encode("led\n")];
  const polledSource: InputSource = {
    subscribe: () => {
      throw new Error("a caller-thread run must poll a source that can be polled");
    },
    openPolled: () => ({
      read: () => (polls++ % 3 === 2 ? pending.shift() ?? null : null),
      close: () => void closed++,
    }),
  };
  const polled = await runGuest("echo", "echo.vmdesc", {
    stdin: polledSource,
    timeout: 20,
    ...caller,
  });
  equal(polled.output, "echo: ready (interrupts)\necho: polled\n");
  equal(polled.result.debugValue, 6);
  equal(closed, 1, "the polled source is closed once");
});

test("caller thread: more than one vCPU still runs on workers", async () => {
  await withGuest(exitGuest(9), async (path) => {
    using m = await Machine.create(flatPlan({ path, cpus: 2 }), caller);
    const r = await m.run({ timeout: 10 });
    equal(r.exitStatus, 19);
    equal(r.stats.vcpus.length, 2);
  });
});

test("caller thread: 40 machines run and closed leave fds, mappings and timers flat", async () => {
  await withGuest(exitGuest(1), async (exitPath) => {
    await withGuest(spinGuest(), async (spinPath) => {
      const fds = kvmFds();
      const timers = posixTimers();
      const mappings = host.liveMappings().length;
      for (let i = 0; i < 40; i++) {
        const spin = i % 2 === 1;
        const m = await createMachine(flatPlan({ path: spin ? spinPath : exitPath }), caller);
        const r = await m.run({ timeout: spin ? 0.05 : 10 });
        equal(r.reason, spin ? "timeout" : "debug_exit");
        m.close();
      }
      equal(kvmFds(), fds, "KVM and memfd fds");
      equal(posixTimers(), timers, "POSIX timers");
      equal(host.liveMappings().length, mappings, "runtime mappings");
    });
  });
});

test("caller thread: a host that refuses the tick timer gives E1005 with a hint (vmdesc boot)", async () => {
  // RLIMIT_SIGPENDING 0: timer_create cannot allocate its signal, EAGAIN.
  await buildGuests(["hello"]);
  const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);
  const o = await new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -i 0 && exec '${Deno.execPath()}' run -A cli/vmdesc.ts boot examples/hello.vmdesc`,
    ],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(o.stderr);
  equal(o.code, 10, err);
  match(err, /error\[E1005\]: cannot start the vCPU tick timer: timer_create: EAGAIN/);
  match(err, /help: .*ulimit -i/);
  equal(new TextDecoder().decode(o.stdout), "", "the guest never ran");
});
