/**
 * A vCPU loop on the calling thread ("caller" mode, machine.ts): how it is driven.
 *
 * The thread sits in KVM_RUN, where nothing reaches it: no timers, no signal listeners, no
 * stdin reads. So a POSIX timer (host/thread_timer.ts) sends the kick signal to this thread
 * every TICK_MS; KVM_RUN returns EINTR even for a guest spinning without exits, and the
 * loop's runSlice() returns (the loop has flushed device output by then). Between slices:
 * stdin is polled, the deadline checked, and every TURN_EVERY_MS the event loop gets one
 * turn, in which timers, AbortSignals, close() and signal listeners run.
 *
 * Ctrl-C and SIGTERM are process-directed; Linux hands them to the main thread first, so
 * they interrupt KVM_RUN too. A kick closer than half a tick to the previous one was not the
 * tick, and then the event loop turns at once, so their listeners run without delay.
 */
import type { LoopOutcome, RunLoop } from "./run_loop.ts";
import type { PolledInput } from "./devices/device.ts";
import { ThreadTimer } from "./host/thread_timer.ts";
import { HostError, KICK_SIGNAL, libc } from "./host/libc.ts";
import { RuntimeError } from "./errors.ts";

/**
 * How often the timer takes the vCPU out of KVM_RUN (ms). One exit and a few µs per tick
 * (~0.1%); it bounds the delay of typed input, of output flushes and of a timeout.
 */
export const TICK_MS = 20;
/** How often the event loop gets a turn while the guest runs (ms). ~0.1 ms a turn here. */
export const TURN_EVERY_MS = 100;

const NOTHING = new Uint8Array(0);
/**
 * One turn of this thread's event loop: due timers, signal listeners and completed reads
 * run. It must park the loop (a microtask or an immediate does not poll the signal pipe);
 * an async op that completes on Deno's thread pool parks it for just its ~0.1 ms, where
 * `setTimeout(0)` parks for 1-2 ms and loads Deno's timer code on first use (~10 ms). A
 * digest of nothing is such an op that needs no permission and has no effect.
 */
const turn = () => crypto.subtle.digest("SHA-1", NOTHING).then(() => {});

export interface SliceDriver {
  loop: RunLoop;
  /** Polled stdin, or null (a subscribed source delivers in the turns by itself). */
  input: PolledInput | null;
  /** Where polled stdin goes. */
  deliver(bytes: Uint8Array): void;
  /** performance.now() at which the run times out, or Infinity. */
  deadline: number;
  /** A stop was asked (checked before each slice and after each turn). */
  stopRequested(): boolean;
  /** The machine was closed from a callback during a turn: touch nothing more. */
  closed(): boolean;
}

/** How the slices ended: the guest's outcome, the deadline, a stop request or close(). */
export type SlicesEnd =
  | { kind: "outcome"; outcome: LoopOutcome }
  | { kind: "timeout" }
  | { kind: "stopped" }
  | { kind: "closed" };

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

/** Runs slices until the run ends; throws what the loop throws (a host error). */
export async function runSlices(d: SliceDriver): Promise<SlicesEnd> {
  const tick = startTick();
  try {
    let lastKick = performance.now();
    let lastTurn = lastKick;
    for (;;) {
      if (d.stopRequested()) return { kind: "stopped" };
      const outcome = d.loop.runSlice();
      if (outcome !== null) return { kind: "outcome", outcome };
      const bytes = d.input?.read();
      if (bytes) d.deliver(bytes);
      const now = performance.now();
      if (now >= d.deadline) return { kind: "timeout" };
      const foreign = now - lastKick < TICK_MS / 2;
      lastKick = now;
      if (foreign || now - lastTurn >= TURN_EVERY_MS) {
        await turn();
        lastTurn = performance.now();
        if (d.closed()) return { kind: "closed" };
      }
    }
  } finally {
    tick.stop();
  }
}
