/**
 * The shared control block between the main thread and the vCPU workers: one
 * SharedArrayBuffer, laid out here once. vCPU workers run synchronous KVM_RUN loops and
 * never turn their event loops, so everything the main thread (or another vCPU) wants
 * from them goes through this block plus a kick (kvm_run.immediate_exit = 1 and SIGUSR2
 * to the thread), never through postMessage.
 *
 * Int32 words:
 *   STOP        0 running; otherwise the StopCode the main thread asked for
 *   READY       number of workers that published their thread id
 *   MB_LOCK     AP → vCPU0 device mailbox: 0 free, 1 taken
 *   MB_STATE    0 idle, 1 request posted, 2 answer ready
 *   MB_*        the request: space (0 pio, 1 mmio), address (lo/hi), size, is_write, value
 *   IN_HEAD     stdin ring: bytes written by the main thread (monotonic)
 *   IN_TAIL     stdin ring: bytes consumed by vCPU0 (monotonic)
 *   GO          0 until the main thread lets the workers enter KVM_RUN
 *   EXITED      workers past their last use of kvm_run, guest memory and devices
 * BigInt64 words (after the Int32 area): the pthread_t of each vCPU worker.
 * Then the stdin ring bytes.
 */
import { MAX_CPUS } from "../plan/limits.ts";

export const STOP = 0;
export const READY = 1;
export const MB_LOCK = 2;
export const MB_STATE = 3;
export const MB_SPACE = 4;
export const MB_ADDR_LO = 5;
export const MB_ADDR_HI = 6;
export const MB_SIZE = 7;
export const MB_IS_WRITE = 8;
export const MB_VALUE = 9;
export const IN_HEAD = 10;
export const IN_TAIL = 11;
/** Set to 1 by the main thread when the workers may enter KVM_RUN. */
export const GO = 12;
/** Workers that left their run loop for good (they touch no guest state after this). */
export const EXITED = 13;
const INT_WORDS = 16;

export const MB_IDLE = 0;
export const MB_REQUEST = 1;
export const MB_ANSWER = 2;

/** Why the main thread stops the guest (value of the STOP word). */
export const StopCode = {
  none: 0,
  /** Another vCPU ended the machine (debug exit, fault): stop quietly. */
  machine: 1,
  timeout: 2,
  interrupted: 3,
  aborted: 4,
} as const;

export const IN_RING_SIZE = 64 * 1024;

export interface Control {
  sab: SharedArrayBuffer;
  i32: Int32Array;
  tids: BigInt64Array;
  ring: Uint8Array;
}

export function createControl(): SharedArrayBuffer {
  return new SharedArrayBuffer(INT_WORDS * 4 + MAX_CPUS * 8 + IN_RING_SIZE);
}

export function viewControl(sab: SharedArrayBuffer): Control {
  return {
    sab,
    i32: new Int32Array(sab, 0, INT_WORDS),
    tids: new BigInt64Array(sab, INT_WORDS * 4, MAX_CPUS),
    ring: new Uint8Array(sab, INT_WORDS * 4 + MAX_CPUS * 8, IN_RING_SIZE),
  };
}

/** Main thread: append stdin bytes to the ring; returns how many fit. */
export function ringPush(c: Control, bytes: Uint8Array): number {
  const head = Atomics.load(c.i32, IN_HEAD);
  const tail = Atomics.load(c.i32, IN_TAIL);
  const free = IN_RING_SIZE - (head - tail);
  const n = Math.min(free, bytes.length);
  for (let i = 0; i < n; i++) c.ring[(head + i) % IN_RING_SIZE] = bytes[i];
  Atomics.store(c.i32, IN_HEAD, head + n);
  return n;
}

/** vCPU0: take whatever the ring holds, or null. */
export function ringTake(c: Control): Uint8Array | null {
  const head = Atomics.load(c.i32, IN_HEAD);
  const tail = Atomics.load(c.i32, IN_TAIL);
  if (head === tail) return null;
  const out = new Uint8Array(head - tail);
  for (let i = 0; i < out.length; i++) out[i] = c.ring[(tail + i) % IN_RING_SIZE];
  Atomics.store(c.i32, IN_TAIL, head);
  return out;
}
