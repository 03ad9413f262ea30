/**
 * The caller's-thread driver: a 1-vCPU machine's loop on the thread that calls run()
 * (`vcpuThread: "caller"`, what `vmdesc boot` uses). `new Worker` blocks its caller
 * ~15-20 ms while Deno builds a second isolate, the largest single cost of a short boot;
 * this driver has none.
 *
 * The thread sits in KVM_RUN, where nothing reaches it: no timers, no signal listeners, no
 * stdin reads. So a POSIX timer (host/thread_timer.ts) sends the kick signal to this thread
 * every TICK_MS; KVM_RUN returns EINTR even for a guest spinning without exits, and the
 * loop's runSlice() returns (the loop has flushed device output by then). Between slices:
 * the REQUEST word is read (pause, stop), stdin is polled, the deadline checked, and every
 * TURN_EVERY_MS the event loop gets one turn, in which timers, AbortSignals, close(),
 * pause()/resume() and signal listeners run.
 *
 * Ctrl-C and SIGTERM are process-directed; Linux hands them to the main thread first, so
 * they interrupt KVM_RUN too. A kick closer than half a tick to the previous one was not the
 * tick, and then the event loop turns at once, so their listeners run without delay.
 *
 * Paused, the vCPU is simply not run: the tick timer is stopped and the event loop is free
 * (and kept alive) until resume() or a stop (paused time does not count toward the timeout).
 */
import type { PolledInput } from "../devices/device.ts";
import { ThreadTimer } from "../host/thread_timer.ts";
import { HostError, KICK_SIGNAL, libc } from "../host/libc.ts";
import { failureOf, RuntimeError } from "../errors.ts";
import { VcpuRequest } from "../lifecycle.ts";
import { kickVcpu, request, type VcpuCall } from "./control.ts";
import type { DriverAttach, DriverEnd, DriverRun, VcpuDriver } from "./driver.ts";
import { type CallAnswer, VcpuThread } from "./vcpu_thread.ts";

/**
 * How often the timer takes the vCPU out of KVM_RUN (ms). One exit and a few µs per tick
 * (~0.1%); it bounds the delay of typed input, of output flushes and of a timeout.
 */
export const TICK_MS = 20;
/** How often the event loop gets a turn while the guest runs (ms). ~0.1 ms a turn here. */
export const TURN_EVERY_MS = 100;

const NOTHING = new Uint8Array(0);
let setImmediateFn: ((callback: () => void) => unknown) | null = null;
/**
 * One turn of this thread's event loop, in which due timers, signal listeners and
 * completed reads run. Two steps, both needed:
 * - park the loop: an async op that completes on Deno's thread pool (a digest of nothing:
 *   no permission, no effect) parks it for its ~0.1 ms, and only a parked loop lets tokio
 *   take in signals and expired timers (a microtask or an immediate alone does not);
 * - come back after the timers phase: the op's continuation runs in the ops phase, before
 *   the timers phase of the same iteration, and going straight back into KVM_RUN from there
 *   starved timers (setInterval callbacks fired a few times in 2 s instead of 17). An
 *   immediate runs after the timers phase. `setTimeout(0)` would do both, but parks 1-2 ms
 *   per turn; node:timers costs ~3 ms to load, paid at the first turn only, so a guest that
 *   ends sooner never pays it.
 */
async function turn(): Promise<void> {
  await crypto.subtle.digest("SHA-1", NOTHING);
  setImmediateFn ??= (await import("node:timers")).setImmediate;
  await new Promise<void>((resolve) => setImmediateFn!(resolve));
}

/** The tick timer; a host refusing it (EAGAIN: no POSIX timers left) is E1005 with a hint. */
function startTick(): ThreadTimer {
  try {
    return ThreadTimer.start(libc().gettid(), KICK_SIGNAL, TICK_MS);
  } catch (e) {
    if (!(e instanceof HostError)) throw e;
    throw new RuntimeError(
      "E1005",
      `cannot start the vCPU tick timer: ${e.message}`,
      "the process may be out of POSIX timers or queued signals: raise `ulimit -i`",
    );
  }
}

export class CallerDriver implements VcpuDriver {
  #a: DriverAttach | null = null;
  #thread: VcpuThread | null = null;
  /** Ends the wait of a paused run (resume, stop, close). */
  #wake: (() => void) | null = null;
  /** Reports the vCPU's end once, from whichever path gets there first. */
  #report: ((end: DriverEnd) => void) | null = null;
  #closed = false;

  attach(a: DriverAttach): Promise<void> {
    try {
      this.#a = a;
      const vm = a.vm;
      this.#thread = VcpuThread.build({
        vcpu: vm.vcpus[0],
        plan: vm.plan,
        ctl: a.ctl,
        vmFd: vm.vmFd,
        memory: vm.memory,
        stdinDevice: a.stdinDevice,
        disks: a.disks,
        terminals: a.terminals,
      }, { ...a.routes, reply: () => {} }); // calls are run directly (call() below)
      // No thread id: the machine's requests come from this very thread, which is then not
      // in KVM_RUN; immediate_exit alone keeps it from entering.
      this.#thread.ready(false);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async run(r: DriverRun): Promise<void> {
    const thread = this.#thread!;
    const ctl = this.#a!.ctl;
    let reported = false;
    const report = this.#report = (end: DriverEnd) => {
      if (reported) return;
      reported = true;
      r.onEnd(0, end);
    };
    let paused = false;
    const held: Uint8Array[] = [];
    // Input that arrives while the guest is paused waits for it (as the workers' ring does).
    const deliver = (bytes: Uint8Array) => paused ? held.push(bytes) : thread.deliver(bytes);
    let input: PolledInput | null = null;
    const cleanups: (() => void)[] = [];
    if (r.stdin?.openPolled) {
      const polled = input = r.stdin.openPolled();
      cleanups.push(() => polled.close());
    } else if (r.stdin) {
      cleanups.push(r.stdin.subscribe(deliver));
    }
    let tick: ThreadTimer | null = null;
    try {
      if (request(ctl) === VcpuRequest.stop) {
        report({
          kind: "ended",
          ...thread.finish({ reason: "stopped", message: "stopped before start" }),
        });
        return;
      }
      thread.enterRunning();
      tick = startTick();
      let lastKick = performance.now();
      let lastTurn = lastKick;
      for (;;) {
        const req = request(ctl);
        if (req === VcpuRequest.stop) {
          report({ kind: "ended", ...thread.finish({ reason: "stopped", message: "stopped" }) });
          return;
        }
        if (req === VcpuRequest.pause) {
          tick?.stop();
          tick = null;
          paused = true;
          thread.enterPaused();
          await this.#paused();
          if (r.closed()) return;
          paused = false;
          if (request(ctl) !== VcpuRequest.run) continue; // stopped while paused
          thread.enterRunning();
          for (const bytes of held.splice(0)) thread.deliver(bytes);
          tick = startTick();
          lastKick = lastTurn = performance.now();
          continue;
        }
        const outcome = thread.loop.runSlice();
        if (outcome !== null) {
          report({ kind: "ended", ...thread.finish(outcome) });
          return;
        }
        const bytes = input?.read();
        if (bytes) thread.deliver(bytes);
        const now = performance.now();
        if (now >= r.deadline()) {
          r.onDeadline(); // the machine asks for stop: seen at the top
          continue;
        }
        const foreign = now - lastKick < TICK_MS / 2;
        lastKick = now;
        if (foreign || now - lastTurn >= TURN_EVERY_MS) {
          await turn();
          lastTurn = performance.now();
          if (r.closed()) return;
        }
      }
    } catch (e) {
      // A host error escaped the loop (a failed ioctl, the tick timer refused).
      const failure = failureOf(e);
      thread.finish({ reason: "stopped", message: "stopped" });
      report({ kind: "failed", failure });
    } finally {
      tick?.stop();
      this.#report = null;
      for (const c of cleanups) c();
    }
  }

  /**
   * Waits while the machine is paused, until the REQUEST word changes (requestChanged()
   * wakes this); paused time does not count toward the timeout. A ref'd timer keeps the
   * event loop alive, as the workers keep it alive in the other driver.
   */
  #paused(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wait = setInterval(() => {}, 1 << 30);
      this.#wake = () => {
        this.#wake = null;
        clearInterval(wait);
        resolve();
      };
    });
  }

  /** This thread is vCPU 0's: the call runs now (the vCPU is not inside KVM_RUN). */
  call(call: VcpuCall): Promise<CallAnswer> {
    const thread = this.#thread;
    if (!thread) return Promise.resolve({ ok: false, error: "no vCPU thread" });
    return Promise.resolve(thread.call(call));
  }

  requestChanged(): void {
    const a = this.#a;
    if (!a) return;
    kickVcpu(a.ctl, 0, a.vm.vcpus[0].runBytes);
    this.#wake?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // This thread is not in KVM_RUN while close() runs (it runs in a turn, or with no run
    // at all). A run in progress ends here, its models closed before the VM is released.
    const thread = this.#thread;
    if (thread) {
      const end = thread.finish({ reason: "stopped", message: "stopped" });
      this.#report?.({ kind: "ended", ...end });
    }
    this.#wake?.();
  }
}
