/**
 * A split virtqueue (virtio 1.2, 2.7) as the device side sees it: the descriptor table, the
 * available ring the driver fills and the used ring the device fills, all in guest RAM.
 *
 * Everything in those rings is written by the guest, so every value is checked before it
 * is used, and guest memory is reached only through `GuestRam` (RAM memslots only: the PCI
 * hole, ROM and unmapped space are outside it):
 * - the rings themselves must lie in RAM, aligned (16/2/4), with a power-of-two size no
 *   larger than the device's maximum: otherwise the queue is refused when the driver
 *   enables it (the device then sets NEEDS_RESET);
 * - the available index may run at most `size` entries ahead of the device (else
 *   NEEDS_RESET: the driver has corrupted its ring), and a head index must be < size;
 * - a chain is walked at most `size` descriptors (a loop or an overlong chain ends it), an
 *   indirect table only where VIRTIO_F_INDIRECT_DESC was negotiated, once per chain, with a
 *   whole number of descriptors, not combined with NEXT; every buffer must lie in RAM, no
 *   device-readable buffer may follow a device-writable one, and a chain's total length
 *   must stay below 4 GiB (the used ring's 32-bit length). Such a chain fails alone: the
 *   device returns it with nothing written (used length 0).
 *
 * Addresses are 64-bit in the rings but guest-physical space ends at 2^52, so an address
 * whose high half is 2^20 or more is outside RAM without looking further (and every number
 * here stays an exact JS number).
 */
import type { GuestRam } from "../device.ts";
import {
  MAX_QUEUE_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from "./spec.ts";

/** What went wrong with what the guest put in a queue (counted and warned about by kind). */
export type FaultKind =
  | "queue_size"
  | "ring_outside_ram"
  | "ring_misaligned"
  | "avail_index"
  | "head_index"
  | "descriptor_index"
  | "chain_too_long"
  | "indirect_table"
  | "descriptor_outside_ram"
  | "chain_order"
  | "chain_length";

export interface Fault {
  kind: FaultKind;
  detail: string;
}

/** A chain whose buffers were all valid: views into guest RAM, in order. */
export interface Chain {
  head: number;
  /** Device-readable buffers (what the driver sends). */
  readable: Uint8Array[];
  /** Device-writable buffers (where the device answers). */
  writable: Uint8Array[];
  readLen: number;
  writeLen: number;
}

/** A chain that failed alone: the device returns `head` with nothing written. */
export interface BadChain {
  head: number;
  fault: Fault;
}

/** What `pop()` found: a chain, a bad chain, nothing new, or a ring the device must stop on. */
export type Popped = Chain | BadChain | null | { fatal: Fault };

const HIGH_LIMIT = 0x10_0000; // high 32 bits of an address at 2^52

function hex(n: number): string {
  return "0x" + n.toString(16);
}

export class SplitQueue {
  /** Set by the driver through the transport. */
  size: number;
  descAddr = 0;
  availAddr = 0;
  usedAddr = 0;
  /** PCI: the MSI-X vector for this queue (NO_VECTOR when none). */
  msixVector = 0xffff;
  /** The queue is enabled and its rings are bound. */
  ready = false;

  #lastAvail = 0;
  #usedIdx = 0;
  #desc: DataView | null = null;
  #avail: DataView | null = null;
  #availIdx: Uint16Array | null = null;
  #used: DataView | null = null;
  #usedIdxWord: Uint16Array | null = null;
  #availEvent: Uint16Array | null = null;
  #eventIdx = false;
  #indirect = false;

  constructor(readonly index: number, readonly maxSize: number) {
    this.size = maxSize;
  }

  /** Back to the state after a device reset. */
  reset(): void {
    this.size = this.maxSize;
    this.descAddr = this.availAddr = this.usedAddr = 0;
    this.msixVector = 0xffff;
    this.ready = false;
    this.#lastAvail = this.#usedIdx = 0;
    this.#desc = this.#avail = this.#used = null;
    this.#availIdx = this.#usedIdxWord = this.#availEvent = null;
  }

  /**
   * The driver enabled the queue: check its size and rings and bind them. Returns the
   * fault that refuses it, or null.
   */
  enable(ram: GuestRam, features: { eventIdx: boolean; indirect: boolean }): Fault | null {
    const n = this.size;
    if (n === 0 || n > this.maxSize || n > MAX_QUEUE_SIZE || (n & (n - 1)) !== 0) {
      return {
        kind: "queue_size",
        detail: `queue ${this.index} size ${n} is not a power of two up to ${this.maxSize}`,
      };
    }
    const rings: [string, number, number, number][] = [
      ["descriptor table", this.descAddr, 16 * n, 16],
      ["available ring", this.availAddr, 6 + 2 * n, 2],
      ["used ring", this.usedAddr, 6 + 8 * n, 4],
    ];
    const views: DataView[] = [];
    for (const [what, addr, len, align] of rings) {
      if (addr % align !== 0) {
        return {
          kind: "ring_misaligned",
          detail: `queue ${this.index}'s ${what} at ${hex(addr)} is not ${align}-byte aligned`,
        };
      }
      // A ring is read as one piece: it must lie inside one RAM memslot.
      const v = addr / 2 ** 32 < HIGH_LIMIT ? ram.view(addr, len) : null;
      if (!v) {
        return {
          kind: "ring_outside_ram",
          detail: `queue ${this.index}'s ${what} ${hex(addr)} + ${len} is not in guest RAM`,
        };
      }
      views.push(new DataView(v.buffer, v.byteOffset, v.byteLength));
    }
    [this.#desc, this.#avail, this.#used] = views;
    this.#availIdx = new Uint16Array(views[1].buffer, views[1].byteOffset, 2);
    this.#usedIdxWord = new Uint16Array(views[2].buffer, views[2].byteOffset, 2);
    this.#availEvent = new Uint16Array(views[2].buffer, views[2].byteOffset + 4 + 8 * n, 1);
    this.#eventIdx = features.eventIdx;
    this.#indirect = features.indirect;
    this.#lastAvail = 0;
    this.#usedIdx = 0;
    this.ready = true;
    return null;
  }

  /** Whether the driver made buffers available that the device has not taken yet. */
  hasAvailable(): boolean {
    return this.ready && Atomics.load(this.#availIdx!, 1) !== this.#lastAvail;
  }

  /** The next available chain, checked (see the module comment). */
  pop(ram: GuestRam): Popped {
    if (!this.ready) return null;
    const availIdx = Atomics.load(this.#availIdx!, 1);
    const pending = (availIdx - this.#lastAvail) & 0xffff;
    if (pending === 0) return null;
    if (pending > this.size) {
      return {
        fatal: {
          kind: "avail_index",
          detail:
            `queue ${this.index}: the available index ${availIdx} is ${pending} entries ahead of the device's ${this.#lastAvail} (queue size ${this.size})`,
        },
      };
    }
    const slot = this.#lastAvail & (this.size - 1);
    const head = this.#avail!.getUint16(4 + 2 * slot, true);
    this.#lastAvail = (this.#lastAvail + 1) & 0xffff;
    if (head >= this.size) {
      // No used entry can name this chain: the driver would index its own state with it.
      return {
        fatal: {
          kind: "head_index",
          detail: `queue ${this.index}: available entry names descriptor ${head} of ${this.size}`,
        },
      };
    }
    return this.#walk(ram, head);
  }

  #walk(ram: GuestRam, head: number): Chain | BadChain {
    const chain: Chain = { head, readable: [], writable: [], readLen: 0, writeLen: 0 };
    const bad = (kind: FaultKind, detail: string): BadChain => ({
      head,
      fault: { kind, detail: `queue ${this.index}, chain ${head}: ${detail}` },
    });
    let table = this.#desc!;
    let tableSize = this.size;
    let indirect = false;
    let i = head;
    let count = 0;
    for (;;) {
      if (++count > tableSize) {
        return bad("chain_too_long", `more than ${tableSize} descriptors (a loop?)`);
      }
      const o = 16 * i;
      const lo = table.getUint32(o, true);
      const hi = table.getUint32(o + 4, true);
      const len = table.getUint32(o + 8, true);
      const flags = table.getUint16(o + 12, true);
      const next = table.getUint16(o + 14, true);
      const addr = hi < HIGH_LIMIT ? hi * 2 ** 32 + lo : Infinity;
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.#indirect) return bad("indirect_table", "indirect descriptor not negotiated");
        if (indirect) return bad("indirect_table", "an indirect table inside an indirect table");
        if (flags & VIRTQ_DESC_F_NEXT) {
          return bad("indirect_table", "an indirect descriptor with NEXT set");
        }
        if (len === 0 || len % 16 !== 0 || len / 16 > MAX_QUEUE_SIZE) {
          return bad("indirect_table", `indirect table length ${len}`);
        }
        const v = addr === Infinity ? null : ram.view(addr, len);
        if (!v) {
          return bad(
            "descriptor_outside_ram",
            `indirect table ${
              addr === Infinity ? "above 2^52" : hex(addr)
            } + ${len} is not in guest RAM`,
          );
        }
        table = new DataView(v.buffer, v.byteOffset, v.byteLength);
        tableSize = len / 16;
        indirect = true;
        i = 0;
        count = 0;
        continue;
      }
      const views = addr === Infinity ? null : ram.views(addr, len);
      if (!views) {
        return bad(
          "descriptor_outside_ram",
          `buffer ${addr === Infinity ? "above 2^52" : hex(addr)} + ${len} is not in guest RAM`,
        );
      }
      if (flags & VIRTQ_DESC_F_WRITE) {
        chain.writable.push(...views);
        chain.writeLen += len;
      } else {
        if (chain.writeLen > 0 || chain.writable.length > 0) {
          return bad("chain_order", "a device-readable buffer after a device-writable one");
        }
        chain.readable.push(...views);
        chain.readLen += len;
      }
      if (chain.readLen + chain.writeLen > 0xffff_ffff) {
        return bad("chain_length", "buffers of 4 GiB or more in one chain");
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) return chain;
      if (next >= tableSize) {
        return bad("descriptor_index", `next descriptor ${next} of ${tableSize}`);
      }
      i = next;
    }
  }

  /**
   * Gives back the last `n` chains popped, unused (a frame that did not fit the buffers
   * available): they are walked and checked again when popped next.
   */
  unpop(n: number): void {
    this.#lastAvail = (this.#lastAvail - n) & 0xffff;
  }

  /**
   * EVENT_IDX: ask to be notified when the driver makes one more entry available than it
   * has now (a device waiting for room, holding back what it popped).
   */
  notifyOnMore(): void {
    if (!this.ready || !this.#eventIdx) return;
    Atomics.store(this.#availEvent!, 0, Atomics.load(this.#availIdx!, 1));
  }

  /** The driver's available index as it is now. */
  get availIdx(): number {
    return this.ready ? Atomics.load(this.#availIdx!, 1) : this.#lastAvail;
  }

  /** Returns chain `head` to the driver with `len` bytes written. */
  push(head: number, len: number): void {
    const slot = this.#usedIdx & (this.size - 1);
    const used = this.#used!;
    used.setUint32(4 + 8 * slot, head, true);
    used.setUint32(8 + 8 * slot, len, true);
    this.#usedIdx = (this.#usedIdx + 1) & 0xffff;
    // The entry is written before the index that publishes it (a seq-cst store).
    Atomics.store(this.#usedIdxWord!, 1, this.#usedIdx);
  }

  /** The used index before a batch (for `needsInterrupt`). */
  get usedIdx(): number {
    return this.#usedIdx;
  }

  /**
   * After a batch: with EVENT_IDX, tell the driver where to notify next (avail_event) and
   * report whether it asked to be interrupted for entries oldUsed..usedIdx (used_event);
   * without it, whether it did not suppress interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT).
   */
  needsInterrupt(oldUsed: number): boolean {
    if (!this.ready || oldUsed === this.#usedIdx) return false;
    if (this.#eventIdx) {
      const usedEvent = this.#avail!.getUint16(4 + 2 * this.size, true);
      return ((this.#usedIdx - usedEvent - 1) & 0xffff) < ((this.#usedIdx - oldUsed) & 0xffff);
    }
    return (this.#avail!.getUint16(0, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** EVENT_IDX: ask to be notified when the driver makes entry `lastAvail` available. */
  publishAvailEvent(): void {
    if (!this.ready || !this.#eventIdx) return;
    Atomics.store(this.#availEvent!, 0, this.#lastAvail);
  }
}
