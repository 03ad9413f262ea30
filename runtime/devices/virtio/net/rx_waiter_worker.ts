/**
 * The TAP waiter's thread (a Worker; rx_waiter.ts starts it): blocks in poll(2) on the
 * TAP descriptor while the device has armed it, and when a frame is waiting, disarms and
 * kicks the models' vCPU out of KVM_RUN, whose `poll()` then moves frames into the guest's
 * buffers. It never reads the TAP itself: frames are taken only where the guest has room,
 * on the thread that owns the queues.
 */
/// <reference lib="deno.worker" />
import { errno, hostBytes, libc, pthreadKill } from "../../../host/libc.ts";
import { ARMED, DONE, IDLE, KICKS, STARTED, STATE, STOP, type WaiterInit } from "./rx_waiter.ts";

const POLLIN = 1;
const EINTR = 4;

self.onmessage = (e: MessageEvent<WaiterInit>) => {
  const init = e.data;
  const w = new Int32Array(init.sab);
  Atomics.store(w, STARTED, 1);
  try {
    const flag = hostBytes(BigInt(init.flagAddress), 1);
    const thread = BigInt(init.thread);
    // struct pollfd[2] { int fd; short events; short revents; }: the TAP, the stop eventfd.
    const pfd = new DataView(new ArrayBuffer(16));
    pfd.setInt32(0, init.tapFd, true);
    pfd.setInt16(4, POLLIN, true);
    pfd.setInt32(8, init.stopFd, true);
    pfd.setInt16(12, POLLIN, true);
    const bytes = new Uint8Array(pfd.buffer);
    const poll = libc().poll;
    for (;;) {
      const s = Atomics.load(w, STATE);
      if (s === STOP) break;
      if (s !== ARMED) {
        Atomics.wait(w, STATE, s);
        continue;
      }
      pfd.setInt16(6, 0, true);
      pfd.setInt16(14, 0, true);
      if (poll(bytes, 2n, -1) < 0) {
        if (errno() === EINTR) continue;
        break; // cannot happen with valid descriptors; the device falls back to the periodic kick
      }
      // Readable, or an error or hang-up the device will meet when it reads: either way
      // the device must look. Disarmed first, so one kick per arming.
      if (pfd.getInt16(6, true) !== 0 && Atomics.compareExchange(w, STATE, ARMED, IDLE) === ARMED) {
        flag[0] = 1;
        pthreadKill(thread, init.signal);
        Atomics.add(w, KICKS, 1);
      }
    }
  } finally {
    Atomics.store(w, DONE, 1);
    Atomics.notify(w, DONE);
  }
};
