/**
 * What happens to a machine, as a stream of events: its state changes, the warnings it
 * gives about the guest (unassigned MMIO, writes to read-only memory, a guest's TSC that
 * could not be held, whatever a device model finds hostile), a disk that took another
 * image, and how the guest ended.
 * The front door (mod.ts) feeds one EventHub per machine; the library reads it with
 * `machine.events()`, the control API streams it (`GET /v1/events`).
 *
 * Every event carries a sequence number (from 1, per machine, no gaps), the wall-clock
 * time and the machine's uptime. A reader that falls behind does not hold the machine or
 * the other readers up: each reader has a bounded queue, and when it is full the oldest
 * events are dropped and the reader is told how many (a `dropped` event) before the next.
 */
import type { MachineState } from "./lifecycle.ts";
import type { ExitReason } from "./errors.ts";
import type { DiskInfo } from "./io/disk_images.ts";

interface EventBase {
  /** 1, 2, 3, ... per machine. */
  seq: number;
  /** Wall-clock time, ISO 8601. */
  time: string;
  /** Milliseconds since the machine started running (0 before). */
  uptime_ms: number;
}

export type MachineEvent =
  | EventBase & { type: "state"; from: MachineState; to: MachineState }
  | EventBase & { type: "warning"; message: string }
  /** A disk took another image (a swap while paused): the disk as it is now. */
  | EventBase & { type: "disk"; disk: DiskInfo }
  | EventBase & {
    type: "exit";
    reason: ExitReason;
    exit_status: number;
    message: string;
  }
  /** This reader fell behind and missed `count` events (not numbered: seq repeats the next). */
  | EventBase & { type: "dropped"; count: number };

/** An event as emitted, before the hub numbers and stamps it. */
export type EventBody =
  | { type: "state"; from: MachineState; to: MachineState }
  | { type: "warning"; message: string }
  | { type: "disk"; disk: DiskInfo }
  | { type: "exit"; reason: ExitReason; exit_status: number; message: string };

/** How many events one reader may have waiting before the oldest are dropped. */
export const READER_QUEUE = 1024;

export interface Reader {
  queue: MachineEvent[];
  dropped: number;
  wake: (() => void) | null;
}

export class EventHub {
  #seq = 0;
  #ended = false;
  readonly #readers = new Set<Reader>();
  readonly #listeners = new Set<(e: MachineEvent) => void>();

  /** `uptimeMs` says how long the machine has run, for the stamp. */
  constructor(readonly uptimeMs: () => number) {}

  get ended(): boolean {
    return this.#ended;
  }

  /** How many readers are registered (each holds up to READER_QUEUE events). */
  get readers(): number {
    return this.#readers.size;
  }

  emit(body: EventBody): void {
    if (this.#ended) return;
    const e = {
      seq: ++this.#seq,
      time: new Date().toISOString(),
      uptime_ms: Math.round(this.uptimeMs()),
      ...body,
    } as MachineEvent;
    for (const l of [...this.#listeners]) {
      try {
        l(e);
      } catch {
        // a listener failing must not stop the others or the machine
      }
    }
    for (const r of this.#readers) {
      if (r.queue.length >= READER_QUEUE) {
        r.queue.shift();
        r.dropped++;
      }
      r.queue.push(e);
      r.wake?.();
    }
  }

  /** No more events: readers get what is queued, then end. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const r of this.#readers) r.wake?.();
  }

  /** Calls `listener` with every event from now on; returns what removes it. */
  listen(listener: (e: MachineEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The events from now on (from this call, not from the first `next()`), until the
   * machine's last (after its exit) or until the reader stops (`break`, `return()`).
   * Ends at once when the hub has ended.
   */
  read(): EventReader {
    const r: Reader = { queue: [], dropped: 0, wake: null };
    this.#readers.add(r);
    return new EventReader(r, () => this.#ended, () => this.#readers.delete(r));
  }
}

/** One reader's events (EventHub.read()): an async iterator. */
export class EventReader implements AsyncIterableIterator<MachineEvent> {
  #done = false;
  constructor(
    readonly r: Reader,
    readonly ended: () => boolean,
    readonly release: () => void,
  ) {}

  async next(): Promise<IteratorResult<MachineEvent, undefined>> {
    const r = this.r;
    while (!this.#done && r.queue.length === 0) {
      if (this.ended()) return this.return();
      await new Promise<void>((resolve) => r.wake = resolve);
      r.wake = null;
    }
    if (this.#done) return { done: true, value: undefined };
    const e = r.queue[0];
    if (r.dropped > 0) {
      const count = r.dropped;
      r.dropped = 0;
      return {
        done: false,
        value: { seq: e.seq, time: e.time, uptime_ms: e.uptime_ms, type: "dropped", count },
      };
    }
    r.queue.shift();
    return { done: false, value: e };
  }

  /** Stops reading: the hub forgets this reader (a pending next() ends too). */
  return(): Promise<IteratorResult<MachineEvent, undefined>> {
    if (!this.#done) {
      this.#done = true;
      this.release();
      this.r.queue.length = 0;
      this.r.wake?.();
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): EventReader {
    return this;
  }
}
