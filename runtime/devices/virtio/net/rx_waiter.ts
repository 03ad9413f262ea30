/**
 * How frames arriving on a TAP device reach a guest without the vCPU ever blocking on the
 * TAP: a waiter thread (a Worker, rx_waiter_worker.ts) sits in poll(2) on the descriptor
 * and kicks the models' vCPU when a frame waits; the device then reads the TAP on that
 * thread, in `poll()`, as long as the guest's receive queue has room, and arms the waiter
 * again once the TAP is empty. While the queue is full the waiter stays disarmed (nothing
 * is read, nothing is dropped by vmdesc; the kernel queues, then drops and counts, on the
 * TAP device as for any slow reader), and the guest's next receive notify re-arms it.
 *
 * The alternative, polling the TAP in the run loop between exits, needs exits: a guest in
 * HLT waiting for a packet makes none, so frames would wait for the next periodic kick
 * (20 ms with the caller's-thread driver, 100 ms with workers). ARCHITECTURE.md says more.
 *
 * Shared words (Int32): STATE (IDLE: the device is busy or waiting for room; ARMED: the
 * waiter polls and kicks once; STOP), DONE (the waiter left its loop), KICKS (count),
 * STARTED (set by the waiter before it first reads STATE).
 */
import type { VcpuWaker } from "../../device.ts";
import { close } from "../../../host/libc.ts";
import { eventFd, signalEventFd } from "./tap.ts";

export const STATE = 0;
export const DONE = 1;
export const KICKS = 2;
export const STARTED = 3;
export const IDLE = 0;
export const ARMED = 1;
export const STOP = 2;

/** What the waiter thread is given (plain data: it crosses to the Worker). */
export interface WaiterInit {
  sab: SharedArrayBuffer;
  tapFd: number;
  stopFd: number;
  /** VcpuWaker's numbers as decimal strings (bigints do not cross postMessage everywhere). */
  thread: string;
  flagAddress: string;
  signal: number;
}

/** How long close() waits for the waiter to leave poll (it leaves at once when signalled). */
const STOP_WAIT_MS = 2000;

export class RxWaiter {
  readonly #w: Int32Array;
  readonly #worker: Worker;
  readonly #stopFd: number;
  #closed = false;

  constructor(tapFd: number, waker: VcpuWaker) {
    const sab = new SharedArrayBuffer(16);
    this.#w = new Int32Array(sab);
    this.#stopFd = eventFd();
    try {
      this.#worker = new Worker(new URL("./rx_waiter_worker.ts", import.meta.url), {
        type: "module",
      });
    } catch (e) {
      close(this.#stopFd);
      throw e;
    }
    const init: WaiterInit = {
      sab,
      tapFd,
      stopFd: this.#stopFd,
      thread: waker.thread.toString(),
      flagAddress: waker.flagAddress.toString(),
      signal: waker.signal,
    };
    this.#worker.postMessage(init);
  }

  /** The TAP is drained (or the device wants to hear of the next frame): wait for one. */
  arm(): void {
    if (Atomics.compareExchange(this.#w, STATE, IDLE, ARMED) === IDLE) {
      Atomics.notify(this.#w, STATE);
    }
  }

  /** The guest has no room: stop waiting until `arm()`. */
  disarm(): void {
    Atomics.compareExchange(this.#w, STATE, ARMED, IDLE);
  }

  get kicks(): number {
    return Atomics.load(this.#w, KICKS);
  }

  /**
   * Stops the waiter and waits until it has left poll(2) (the TAP descriptor may be closed
   * after this), then ends the Worker and closes the eventfd. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#w, STATE, STOP);
    Atomics.notify(this.#w, STATE);
    signalEventFd(this.#stopFd);
    // A waiter that had not started sees STOP first and never touches the TAP.
    if (Atomics.load(this.#w, STARTED) === 1) {
      Atomics.wait(this.#w, DONE, 0, STOP_WAIT_MS);
    }
    this.#worker.terminate();
    close(this.#stopFd);
  }
}
