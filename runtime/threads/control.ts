/**
 * The control block the machine and its vCPU threads share: one SharedArrayBuffer, laid
 * out here once. A vCPU thread runs a synchronous KVM_RUN loop and never turns its event
 * loop, so everything the machine (or another vCPU) wants from it goes through this block
 * plus a kick (kvm_run.immediate_exit = 1 and the kick signal to the thread), never through
 * postMessage. The states and requests are named in runtime/lifecycle.ts.
 *
 * Int32 words:
 *   REQUEST     what the machine asks of every vCPU thread (VcpuRequest: hold, run, pause,
 *               stop); written by the machine only.
 *   CHANGES     bumped (and notified) by a vCPU thread at each move of its state word
 *   WAKE        bumped (and notified) whenever a waiting thread must look again: a new
 *               REQUEST, an AP posting to the mailbox, a call; threads at the start gate
 *               and parked threads wait on it
 *   MB_LOCK     AP → vCPU 0 device mailbox: 0 free, 1 taken
 *   MB_STATE    0 idle, 1 request posted, 2 answer ready
 *   MB_*        the request: space (0 pio, 1 mmio), address (lo/hi), size, is_write, value
 *   IN_HEAD     stdin ring: bytes written by the machine's thread (monotonic)
 *   IN_TAIL     stdin ring: bytes consumed by vCPU 0 (monotonic)
 *   CALL_SEQ    machine → vCPU 0 calls (work on the device models, e.g. a live stats
 *               snapshot): the number of the call posted last (monotonic)
 *   CALL_DONE   the number of the last call vCPU 0 took
 *   CALL_LEN    length of the posted call's JSON in the call buffer
 * BigInt64 words: the pthread_t of each vCPU thread (0 until published; never published
 *   for a vCPU run on the machine's own thread, which is never in KVM_RUN when the
 *   machine writes a request).
 * Int32 words: the kernel thread id of each vCPU worker (0 until published), so the
 *   machine can tell when the thread is gone.
 * Int32 words: each vCPU thread's state (VcpuState).
 * Then the stdin ring bytes, then the call buffer (the posted call's JSON).
 */
import { MAX_CPUS } from "../../plan/limits.ts";
import { VCPU_STATE_NAMES, vcpuCanMove, VcpuRequest, type VcpuState } from "../lifecycle.ts";
import { KVM_RUN_STRUCT } from "../kvm/abi.ts";
import * as host from "../host/libc.ts";

export const REQUEST = 0;
export const CHANGES = 1;
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
export const WAKE = 12;
export const CALL_SEQ = 13;
export const CALL_DONE = 14;
export const CALL_LEN = 15;
const INT_WORDS = 16;

export const MB_IDLE = 0;
export const MB_REQUEST = 1;
export const MB_ANSWER = 2;

export const IN_RING_SIZE = 64 * 1024;
/** Room for one call's JSON (a call names an operation and a few arguments). */
export const CALL_BUF_SIZE = 16 * 1024;

const TIDS_OFFSET = INT_WORDS * 4;
const KERNEL_TIDS_OFFSET = TIDS_OFFSET + MAX_CPUS * 8;
const STATES_OFFSET = KERNEL_TIDS_OFFSET + MAX_CPUS * 4;
const RING_OFFSET = STATES_OFFSET + MAX_CPUS * 4;
const CALL_OFFSET = RING_OFFSET + IN_RING_SIZE;

export interface Control {
  sab: SharedArrayBuffer;
  i32: Int32Array;
  tids: BigInt64Array;
  /** One word per vCPU worker: its kernel thread id. */
  kernelTids: Int32Array;
  /** One word per vCPU: its VcpuState. */
  states: Int32Array;
  ring: Uint8Array;
  call: Uint8Array;
}

export function createControl(): SharedArrayBuffer {
  return new SharedArrayBuffer(CALL_OFFSET + CALL_BUF_SIZE);
}

export function viewControl(sab: SharedArrayBuffer): Control {
  return {
    sab,
    i32: new Int32Array(sab, 0, INT_WORDS),
    tids: new BigInt64Array(sab, TIDS_OFFSET, MAX_CPUS),
    kernelTids: new Int32Array(sab, KERNEL_TIDS_OFFSET, MAX_CPUS),
    states: new Int32Array(sab, STATES_OFFSET, MAX_CPUS),
    ring: new Uint8Array(sab, RING_OFFSET, IN_RING_SIZE),
    call: new Uint8Array(sab, CALL_OFFSET, CALL_BUF_SIZE),
  };
}

// ── the machine's side ───────────────────────────────────────────────────────────────

export function request(c: Control): VcpuRequest {
  return Atomics.load(c.i32, REQUEST) as VcpuRequest;
}

/**
 * Asks every vCPU thread for `req` and wakes the parked ones. `stop` is final: once set,
 * nothing changes the word again (returns false then).
 */
export function setRequest(c: Control, req: VcpuRequest): boolean {
  const now = Atomics.load(c.i32, REQUEST);
  if (now === VcpuRequest.stop) return false;
  if (Atomics.compareExchange(c.i32, REQUEST, now, req) !== now) return setRequest(c, req);
  Atomics.notify(c.i32, REQUEST);
  wakeParked(c);
  return true;
}

const OFF_IMMEDIATE_EXIT = KVM_RUN_STRUCT.f.immediate_exit.off;

/**
 * Takes one vCPU out of KVM_RUN, or keeps it from entering: immediate_exit = 1 in its
 * kvm_run page covers a thread about to enter, the kick signal one already inside (its
 * no-op handler makes KVM_RUN return EINTR). The thread clears immediate_exit, then reads
 * REQUEST, so a request written before the kick is always seen.
 */
export function kickVcpu(c: Control, index: number, runBytes: Uint8Array): void {
  runBytes[OFF_IMMEDIATE_EXIT] = 1;
  const tid = Atomics.load(c.tids, index);
  if (tid !== 0n) host.pthreadKill(BigInt.asUintN(64, tid), host.KICK_SIGNAL);
}

export function vcpuState(c: Control, index: number): VcpuState {
  return Atomics.load(c.states, index) as VcpuState;
}

/** True when every one of the first `n` vCPUs is in one of `states`. */
export function allVcpusIn(c: Control, n: number, states: readonly VcpuState[]): boolean {
  for (let i = 0; i < n; i++) if (!states.includes(vcpuState(c, i))) return false;
  return true;
}

/**
 * Blocks this thread until `done()` or `ms` have passed; woken by every vCPU state change.
 * Only where blocking is right: close(), which must not return while a thread may still
 * touch what it releases.
 */
export function waitForVcpus(c: Control, done: () => boolean, ms: number): boolean {
  const deadline = performance.now() + ms;
  for (;;) {
    const seen = Atomics.load(c.i32, CHANGES);
    if (done()) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(c.i32, CHANGES, seen, Math.min(left, 5));
  }
}

// ── a vCPU thread's side ─────────────────────────────────────────────────────────────

/**
 * Moves vCPU `index` to `to` (only its own thread does this). A move the diagram in
 * lifecycle.ts does not have is a bug in vmdesc, and throws.
 */
export function enterVcpuState(c: Control, index: number, to: VcpuState): void {
  const from = vcpuState(c, index);
  if (!vcpuCanMove(from, to)) {
    throw new Error(
      `vCPU ${index}: no transition from ${VCPU_STATE_NAMES[from]} to ${VCPU_STATE_NAMES[to]}`,
    );
  }
  Atomics.store(c.states, index, to);
  Atomics.add(c.i32, CHANGES, 1);
  Atomics.notify(c.i32, CHANGES);
}

/**
 * A paused thread's wait: read `wakeCount` first, look at REQUEST (and the mailbox), then
 * `waitForWake` with what was read, so a wake that came in between is never lost.
 */
export function wakeCount(c: Control): number {
  return Atomics.load(c.i32, WAKE);
}

export function waitForWake(c: Control, seen: number): void {
  Atomics.wait(c.i32, WAKE, seen);
}

/** Makes every paused thread look again (a new REQUEST, an AP posting to the mailbox). */
export function wakeParked(c: Control): void {
  Atomics.add(c.i32, WAKE, 1);
  Atomics.notify(c.i32, WAKE);
}

// ── the stdin ring (machine's thread → vCPU 0) ──────────────────────────────────────

/** Machine's thread: append stdin bytes to the ring; returns how many fit. */
export function ringPush(c: Control, bytes: Uint8Array): number {
  const head = Atomics.load(c.i32, IN_HEAD);
  const tail = Atomics.load(c.i32, IN_TAIL);
  const free = IN_RING_SIZE - (head - tail);
  const n = Math.min(free, bytes.length);
  for (let i = 0; i < n; i++) c.ring[(head + i) % IN_RING_SIZE] = bytes[i];
  Atomics.store(c.i32, IN_HEAD, head + n);
  return n;
}

/** vCPU 0: take whatever the ring holds, or null. */
export function ringTake(c: Control): Uint8Array | null {
  const head = Atomics.load(c.i32, IN_HEAD);
  const tail = Atomics.load(c.i32, IN_TAIL);
  if (head === tail) return null;
  const out = new Uint8Array(head - tail);
  for (let i = 0; i < out.length; i++) out[i] = c.ring[(tail + i) % IN_RING_SIZE];
  Atomics.store(c.i32, IN_TAIL, head);
  return out;
}

// ── calls (machine's thread → vCPU 0) ────────────────────────────────────────────────

/** What the machine asks vCPU 0 to do on its device models (threads/vcpu_thread.ts runs it). */
export interface VcpuCall {
  op: string;
  args?: unknown;
}

const callEncoder = new TextEncoder();
const callDecoder = new TextDecoder();

/**
 * Machine's thread: posts `call` for vCPU 0 and returns its number (the answer comes back
 * with it). One call at a time: the caller waits for the answer before posting another.
 * The caller then kicks vCPU 0 (running) or it sees the call when woken (parked).
 */
export function postCall(c: Control, call: VcpuCall): number {
  const bytes = callEncoder.encode(JSON.stringify(call));
  if (bytes.length > CALL_BUF_SIZE) throw new RangeError(`call ${call.op}: arguments too large`);
  c.call.set(bytes);
  Atomics.store(c.i32, CALL_LEN, bytes.length);
  const seq = Atomics.add(c.i32, CALL_SEQ, 1) + 1;
  wakeParked(c);
  return seq;
}

/** vCPU 0: the call posted and not yet taken, or null. */
export function takeCall(c: Control): { seq: number; call: VcpuCall } | null {
  const seq = Atomics.load(c.i32, CALL_SEQ);
  if (seq === Atomics.load(c.i32, CALL_DONE)) return null;
  const len = Atomics.load(c.i32, CALL_LEN);
  // Copied out of the shared buffer first: TextDecoder refuses shared memory.
  const call = JSON.parse(callDecoder.decode(c.call.slice(0, len))) as VcpuCall;
  Atomics.store(c.i32, CALL_DONE, seq);
  return { seq, call };
}
