/**
 * An MSI-X table and its pending bits (PCI 3.0, 6.8.2) as a virtio PCI function keeps them
 * in its BAR: 16 bytes a vector (address low, address high, data, vector control), every
 * vector masked at power-on. A message for a masked vector (or while the function is
 * masked) sets its pending bit instead, and goes out when the driver unmasks it.
 */
import type { AccessSize } from "../device.ts";
import { NO_VECTOR } from "./spec.ts";

export class MsixTable {
  readonly #table: Uint8Array;
  readonly #view: DataView;
  readonly #pending: Uint8Array;
  /** Message Control: MSI-X Enable and Function Mask, as the config space says. */
  enabled = false;
  masked = false;
  /** Messages sent, and held back while masked. */
  sent = 0;
  deferred = 0;

  constructor(readonly vectors: number, readonly send: (address: number, data: number) => void) {
    this.#table = new Uint8Array(16 * vectors);
    this.#view = new DataView(this.#table.buffer);
    this.#pending = new Uint8Array(8 * Math.ceil(vectors / 64));
    this.reset();
  }

  /** Power-on: every vector masked, nothing pending. */
  reset(): void {
    this.#table.fill(0);
    for (let i = 0; i < this.vectors; i++) this.#table[16 * i + 12] = 1;
    this.#pending.fill(0);
    this.enabled = this.masked = false;
  }

  #vectorMasked(n: number): boolean {
    return this.masked || (this.#table[16 * n + 12] & 1) !== 0;
  }

  #deliver(n: number): void {
    const lo = this.#view.getUint32(16 * n, true);
    const hi = this.#view.getUint32(16 * n + 4, true);
    this.sent++;
    this.send(hi * 2 ** 32 + lo, this.#view.getUint32(16 * n + 8, true));
  }

  /** Signals vector `n` (nothing for NO_VECTOR or a vector the table does not have). */
  signal(n: number): void {
    if (n === NO_VECTOR || n >= this.vectors) return;
    if (this.#vectorMasked(n)) {
      this.#pending[n >> 3] |= 1 << (n & 7);
      this.deferred++;
      return;
    }
    this.#deliver(n);
  }

  /** Sends what became unmasked (after a table write or a Message Control change). */
  flush(): void {
    if (!this.enabled || this.masked) return;
    for (let n = 0; n < this.vectors; n++) {
      const bit = 1 << (n & 7);
      if ((this.#pending[n >> 3] & bit) && !this.#vectorMasked(n)) {
        this.#pending[n >> 3] &= ~bit;
        this.#deliver(n);
      }
    }
  }

  readTable(o: number, size: AccessSize): number {
    return readLe(this.#table, o, size);
  }

  writeTable(o: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size && o + i < this.#table.length; i++) {
      this.#table[o + i] = (value >>> (8 * i)) & 0xff;
    }
    this.flush();
  }

  /** The pending bits are read-only to the driver. */
  readPending(o: number, size: AccessSize): number {
    return readLe(this.#pending, o, size);
  }
}

/** A little-endian read of `size` bytes at `o`; bytes past the end read 0. */
function readLe(bytes: Uint8Array, o: number, size: number): number {
  let value = 0;
  for (let i = size - 1; i >= 0; i--) value = value * 256 + (bytes[o + i] ?? 0);
  return value >>> 0;
}
