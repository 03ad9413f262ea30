/**
 * Pause and resume with a guest that watches its own clocks: the ticker prints a line
 * every 5 ms of its kvmclock time, with its TSC. While the machine is paused nothing is
 * printed, and neither clock runs ahead across the pause: the pause is 700 ms of wall
 * time, the guest's clocks move by about one tick. Where the host's KVM ignores TSC
 * offsets (this project's kvm_pvm does), the runtime must say so, and the guest's TSC
 * must show it: the test holds the runtime's claim to what the guest saw, either way.
 *
 * Both drivers through the library (the caller's thread, 1 vCPU; workers, 2 vCPUs), and
 * both machines through the control API of `vmdesc boot`; 100 pause/resume cycles leave
 * the vmdesc process with the threads and fds it had.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { buildGuests } from "../../examples/guests/build.ts";
import { compileFile } from "../../mod.ts";
import { createMachine } from "../../runtime/mod.ts";
import { apiRequest } from "../../runtime/api/client.ts";
import { skipReason } from "../skip.ts";
import {
  curl,
  parseTick,
  processResources,
  sleep,
  type Tick,
  TICKER,
  until,
  withTicker,
} from "./helpers.ts";

const kvm = skipReason("control API pause tests", { kvm: true }) === null;
if (!kvm) console.log("skip pause tests: /dev/kvm is absent");
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name,
    ignore: !kvm,
    async fn() {
      await buildGuests(["ticker"]);
      await fn();
    },
  });

const PAUSE_MS = 700;
/**
 * Most a clock may move between two lines for it to count as held across the pause:
 * a tick is 5 ms; a busy host can take the vCPU away for a while (seen: ~100 ms).
 */
const HELD_BELOW_NS = 300_000_000;

/** What the guest's lines say about the pause that happened in them. */
function acrossPause(ticks: Tick[]) {
  ok(ticks.length > 40, `enough lines (${ticks.length})`);
  ticks.forEach((t, i) => equal(t.n, ticks[0].n + i, "lines are numbered without gaps"));
  // The pause: the longest wait between two lines on the host's side.
  let at = 1;
  for (let i = 1; i < ticks.length; i++) {
    if (ticks[i].wall - ticks[i - 1].wall > ticks[at].wall - ticks[at - 1].wall) at = i;
  }
  // TSC ticks per kvmclock ns, from the lines that are not around the pause.
  const rates = ticks.slice(1).map((t, i) => [t, ticks[i]] as const)
    .filter(([, prev], i) => i + 1 !== at && i + 1 !== at + 1 && prev)
    .map(([t, prev]) => Number(t.tsc - prev.tsc) / Number(t.clock - prev.clock))
    .sort((a, b) => a - b);
  const rate = rates[Math.floor(rates.length / 2)];
  let clockJump = 0;
  let tscJump = 0;
  for (let i = 1; i < ticks.length; i++) {
    clockJump = Math.max(clockJump, Number(ticks[i].clock - ticks[i - 1].clock));
    tscJump = Math.max(tscJump, Number(ticks[i].tsc - ticks[i - 1].tsc) / rate);
  }
  return { wallGap: ticks[at].wall - ticks[at - 1].wall, clockJump, tscJump };
}

/** Holds the guest's view of the pause to what the runtime says it held. */
function checkClocks(
  seen: ReturnType<typeof acrossPause>,
  tscHeld: boolean | null,
  warnings: string[],
  what: string,
) {
  ok(seen.wallGap >= PAUSE_MS - 50, `${what}: the pause shows (${seen.wallGap.toFixed(0)} ms)`);
  ok(
    seen.clockJump < HELD_BELOW_NS,
    `${what}: kvmclock did not run ahead (longest step ${(seen.clockJump / 1e6).toFixed(1)} ms)`,
  );
  const tsc = `longest TSC step ${(seen.tscJump / 1e6).toFixed(1)} ms`;
  const ignored = warnings.some((w) => /ignores TSC offsets/.test(w));
  if (tscHeld === true) {
    ok(seen.tscJump < HELD_BELOW_NS, `${what}: the TSC did not run ahead (${tsc})`);
    ok(!ignored, `${what}: no warning about the TSC`);
  } else {
    equal(tscHeld, false, `${what}: the runtime checked the TSC`);
    ok(seen.tscJump >= (PAUSE_MS - 100) * 1e6, `${what}: the guest saw its TSC run on (${tsc})`);
    ok(ignored, `${what}: the runtime warned that the host ignores TSC offsets`);
  }
}

for (const [mode, machine] of [["caller", "ticker"], ["worker", "smp"]] as const) {
  test(`pause (library, ${mode}'s thread, ${machine}): nothing printed, clocks held, goes on`, async () => {
    const { plans } = await compileFile(TICKER);
    const text: { text: string; wall: number }[] = [];
    let rest = "";
    const warnings: string[] = [];
    using m = await createMachine(plans.get(machine)!, {
      vcpuThread: mode,
      warn: (w) => warnings.push(w),
      serial: (bytes) => {
        const parts = (rest + new TextDecoder().decode(bytes)).split("\n");
        rest = parts.pop()!;
        for (const t of parts) text.push({ text: t, wall: performance.now() });
      },
    });
    const events: string[] = [];
    const reading = (async () => {
      for await (const e of m.events()) events.push(e.type === "state" ? e.to : e.type);
    })();
    const running = m.run({ timeout: 60 });
    await until(() => text.length > 30, 10_000, "the guest prints");
    await m.pause();
    const printed = text.length;
    await sleep(PAUSE_MS);
    equal(text.length, printed, "nothing printed while paused");
    deepEqual(m.vcpuStates, machine === "smp" ? ["paused", "paused"] : ["paused"]);
    await m.resume();
    await until(() => text.length > printed + 30, 10_000, "the guest goes on");
    m.stop();
    const r = await running;
    equal(r.reason, "stopped");
    await reading;
    const ticks = text.map((l) => parseTick(l.text, l.wall)).filter((t) => t !== null);
    checkClocks(acrossPause(ticks), m.guestTime!.tscHeld, warnings, mode);
    equal(m.guestTime!.kvmclockHeld, true);
    deepEqual(
      events.filter((e) => e !== "warning"),
      ["running", "paused", "running", "stopping", "exited", "exit"],
    );
  });
}

for (const machine of ["ticker", "smp"]) {
  test(`pause (control API, ${machine}): clocks held; 100 cycles leave no thread or fd`, async () => {
    await withTicker(machine, async (m, sock) => {
      const pid = m.child.pid;
      await until(() => m.stdout.ticks().length > 30, 10_000, "the guest prints");
      const pause = await curl(sock, "POST", "/v1/actions", { body: '{"action":"pause"}' });
      equal(pause.status, 200);
      await sleep(100); // what was written before the pause reaches this side of the pipe
      const printed = m.stdout.lines.length;
      await sleep(PAUSE_MS - 100);
      equal(m.stdout.lines.length, printed, "nothing printed while paused");
      equal((await curl(sock, "POST", "/v1/actions", { body: '{"action":"resume"}' })).status, 200);
      await until(() => m.stdout.lines.length > printed + 30, 10_000, "the guest goes on");
      const info = (await curl(sock, "GET", "/v1/machine")).json as {
        guest_time: { kvmclock_held: boolean; tsc_held: boolean | null };
      };
      equal(info.guest_time.kvmclock_held, true);
      checkClocks(
        acrossPause(m.stdout.ticks()),
        info.guest_time.tsc_held,
        m.stderr.lines.map((l) => l.text),
        machine,
      );
      // Warm up (the first cycles start what stays: timers, pool threads), then count.
      const cycle = async () => {
        for (const action of ["pause", "resume"]) {
          const r = await apiRequest(sock, "POST", "/v1/actions", { action });
          equal(r.status, 200, JSON.stringify(r.body));
        }
      };
      for (let i = 0; i < 10; i++) await cycle();
      await sleep(200);
      const before = processResources(pid);
      const ticksBefore = m.stdout.ticks().length;
      for (let i = 0; i < 100; i++) await cycle();
      // Connections the server has answered close a moment later (seconds under an
      // emulator); a thread of Deno's pool counted before may have ended since: a leak is
      // what grows.
      let after = processResources(pid);
      for (let i = 0; i < 500 && (after.fds > before.fds || after.threads > before.threads); i++) {
        await sleep(20);
        after = processResources(pid);
      }
      ok(
        after.fds <= before.fds && after.threads <= before.threads,
        `threads and fds of the vmdesc process: ${JSON.stringify(before)} → ${
          JSON.stringify(after)
        }`,
      );
      await until(() => m.stdout.ticks().length > ticksBefore + 20, 10_000, "still running");
    });
  });
}
