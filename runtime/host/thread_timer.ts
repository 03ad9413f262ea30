/**
 * A periodic signal to one thread: a POSIX timer on CLOCK_MONOTONIC that notifies with
 * SIGEV_THREAD_ID. It is how a vCPU loop running on the caller's thread
 * (threads/caller_driver.ts) gets out of KVM_RUN now and then: the signal makes KVM_RUN
 * return EINTR even while the guest spins without exits, and nothing else can reach a
 * thread blocked in that ioctl.
 *
 * The signal needs a handler (machine.ts installs a no-op listener for the kick signal),
 * or its default action would end the process.
 */
import { fail, libc } from "./libc.ts";

const CLOCK_MONOTONIC = 1;
/** sigev_notify: deliver to the thread in sigev_notify_thread_id (Linux). */
const SIGEV_THREAD_ID = 4;

export class ThreadTimer {
  #id: bigint | null;

  private constructor(id: bigint) {
    this.#id = id;
  }

  /** Sends `signal` to thread `tid` every `intervalMs`, first after one interval. */
  static start(tid: number, signal: number, intervalMs: number): ThreadTimer {
    const sym = libc();
    // struct sigevent (64 bytes): sigev_value @0, sigev_signo @8, sigev_notify @12,
    // sigev_notify_thread_id @16.
    const sev = new DataView(new ArrayBuffer(64));
    sev.setInt32(8, signal, true);
    sev.setInt32(12, SIGEV_THREAD_ID, true);
    sev.setInt32(16, tid, true);
    const id = new BigUint64Array(1);
    if (
      sym.timer_create(CLOCK_MONOTONIC, new Uint8Array(sev.buffer), new Uint8Array(id.buffer)) !==
        0
    ) {
      fail("timer_create");
    }
    const timer = new ThreadTimer(id[0]);
    const ns = BigInt(Math.round(intervalMs * 1e6));
    const period = [ns / 1_000_000_000n, ns % 1_000_000_000n];
    // struct itimerspec: it_interval, then it_value (both {tv_sec, tv_nsec}).
    const spec = new BigInt64Array([...period, ...period]);
    if (sym.timer_settime(id[0], 0, new Uint8Array(spec.buffer), null) !== 0) {
      try {
        fail("timer_settime");
      } finally {
        timer.stop();
      }
    }
    return timer;
  }

  /** Deletes the timer (no signal is sent after this returns). Idempotent. */
  stop(): void {
    if (this.#id === null) return;
    libc().timer_delete(this.#id);
    this.#id = null;
  }
}
