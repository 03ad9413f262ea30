/**
 * A virtio driver in TypeScript, for the device unit tests: it lays out split virtqueues in
 * the recording context's guest RAM, negotiates features and drives a device through its
 * MMIO or PCI registers, the way a guest's driver would (and, for the hostile tests, the
 * way a broken one would). Only tests import this module.
 */
import type { Device, GuestRam } from "../device.ts";
import { COMMON, MMIO, STATUS } from "./spec.ts";

export interface Buf {
  addr: number;
  len: number;
  write?: boolean;
  /** Raw flags to use instead (hostile tests). */
  flags?: number;
  /** Raw next index (hostile tests). */
  next?: number;
}

/** A split virtqueue laid out at `base` in guest RAM: descriptors, avail ring, used ring. */
export class TestQueue {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  #nextDesc = 0;
  #availIdx = 0;
  #seenUsed = 0;

  constructor(readonly ram: GuestRam, readonly base: number, readonly size: number) {
    this.desc = base;
    this.avail = base + 16 * size;
    this.used = Math.ceil((this.avail + 6 + 2 * size) / 4) * 4;
    ram.write(base, new Uint8Array(this.used + 6 + 8 * size - base));
  }

  #u16(gpa: number, v: number) {
    this.ram.write(gpa, Uint8Array.of(v & 0xff, v >> 8));
  }

  #r16(gpa: number): number {
    const b = this.ram.read(gpa, 2);
    return b[0] | (b[1] << 8);
  }

  #r32(gpa: number): number {
    const b = this.ram.read(gpa, 4);
    return new DataView(b.buffer).getUint32(0, true);
  }

  /** Writes descriptor `i` as given. */
  writeDesc(i: number, addr: number, len: number, flags: number, next: number, table = this.desc) {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(addr), true);
    v.setUint32(8, len, true);
    v.setUint16(12, flags, true);
    v.setUint16(14, next, true);
    this.ram.write(table + 16 * i, b);
  }

  /** Puts a chain of buffers in the descriptor table and makes it available; its head. */
  add(bufs: Buf[]): number {
    const head = this.#nextDesc;
    bufs.forEach((b, k) => {
      const i = (head + k) % this.size;
      const last = k === bufs.length - 1;
      const flags = b.flags ?? ((b.write ? 2 : 0) | (last ? 0 : 1));
      this.writeDesc(i, b.addr, b.len, flags, b.next ?? (i + 1) % this.size);
    });
    this.#nextDesc = (head + bufs.length) % this.size;
    this.offer(head);
    return head;
  }

  /** Makes descriptor `head` available as it is. */
  offer(head: number) {
    this.#u16(this.avail + 4 + 2 * (this.#availIdx % this.size), head);
    this.#availIdx = (this.#availIdx + 1) & 0xffff;
    this.#u16(this.avail + 2, this.#availIdx);
  }

  /** Sets the available index directly (hostile tests). */
  setAvailIdx(v: number) {
    this.#availIdx = v & 0xffff;
    this.#u16(this.avail + 2, this.#availIdx);
  }

  /** Used entries since the last call: [id, len]. */
  takeUsed(): [number, number][] {
    const idx = this.#r16(this.used + 2);
    const out: [number, number][] = [];
    while (this.#seenUsed !== idx) {
      const slot = this.#seenUsed % this.size;
      out.push([this.#r32(this.used + 4 + 8 * slot), this.#r32(this.used + 8 + 8 * slot)]);
      this.#seenUsed = (this.#seenUsed + 1) & 0xffff;
    }
    return out;
  }

  /** EVENT_IDX: the device's avail_event. */
  availEvent(): number {
    return this.#r16(this.used + 4 + 8 * this.size);
  }

  /** EVENT_IDX: the driver's used_event. */
  setUsedEvent(v: number) {
    this.#u16(this.avail + 4 + 2 * this.size, v);
  }
}

/** Register access to a virtio-mmio device at `base`. */
export class MmioDriver {
  constructor(readonly dev: Device, readonly base: number) {}
  r(o: number): number {
    return this.dev.read("mmio", this.base + o, 4);
  }
  w(o: number, v: number) {
    this.dev.write("mmio", this.base + o, 4, v);
  }
  get status(): number {
    return this.r(MMIO.STATUS);
  }
  features(): bigint {
    this.w(MMIO.DEVICE_FEATURES_SEL, 0);
    const lo = this.r(MMIO.DEVICE_FEATURES);
    this.w(MMIO.DEVICE_FEATURES_SEL, 1);
    return (BigInt(this.r(MMIO.DEVICE_FEATURES)) << 32n) | BigInt(lo);
  }
  /** ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device kept it. */
  negotiate(features: bigint): boolean {
    this.w(MMIO.STATUS, 0);
    this.w(MMIO.STATUS, STATUS.ACKNOWLEDGE);
    this.w(MMIO.STATUS, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    this.w(MMIO.DRIVER_FEATURES_SEL, 0);
    this.w(MMIO.DRIVER_FEATURES, Number(features & 0xffff_ffffn));
    this.w(MMIO.DRIVER_FEATURES_SEL, 1);
    this.w(MMIO.DRIVER_FEATURES, Number(features >> 32n));
    this.w(MMIO.STATUS, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    return (this.status & STATUS.FEATURES_OK) !== 0;
  }
  setupQueue(i: number, q: TestQueue) {
    this.w(MMIO.QUEUE_SEL, i);
    this.w(MMIO.QUEUE_NUM, q.size);
    const lohi = (lo: number, hi: number, a: number) => {
      this.w(lo, a % 2 ** 32);
      this.w(hi, Math.floor(a / 2 ** 32));
    };
    lohi(MMIO.QUEUE_DESC_LOW, MMIO.QUEUE_DESC_HIGH, q.desc);
    lohi(MMIO.QUEUE_DRIVER_LOW, MMIO.QUEUE_DRIVER_HIGH, q.avail);
    lohi(MMIO.QUEUE_DEVICE_LOW, MMIO.QUEUE_DEVICE_HIGH, q.used);
    this.w(MMIO.QUEUE_READY, 1);
  }
  driverOk() {
    this.w(MMIO.STATUS, this.status | STATUS.DRIVER_OK);
  }
  notify(i: number) {
    this.w(MMIO.QUEUE_NOTIFY, i);
  }
  config(o: number, size: 1 | 2 | 4 = 4): number {
    return this.dev.read("mmio", this.base + MMIO.CONFIG + o, size);
  }
}

/** Register access to a virtio PCI function's BAR (common cfg at 0, notify at 0x3000). */
export class PciBarDriver {
  constructor(readonly dev: Device, readonly bar: number) {}
  r(o: number, size: 1 | 2 | 4): number {
    return this.dev.read("mmio", this.bar + o, size);
  }
  w(o: number, size: 1 | 2 | 4, v: number) {
    this.dev.write("mmio", this.bar + o, size, v);
  }
  get status(): number {
    return this.r(COMMON.DEVICE_STATUS, 1);
  }
  negotiate(features: bigint): boolean {
    this.w(COMMON.DEVICE_STATUS, 1, 0);
    this.w(COMMON.DEVICE_STATUS, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    this.w(COMMON.DRIVER_FEATURE_SELECT, 4, 0);
    this.w(COMMON.DRIVER_FEATURE, 4, Number(features & 0xffff_ffffn));
    this.w(COMMON.DRIVER_FEATURE_SELECT, 4, 1);
    this.w(COMMON.DRIVER_FEATURE, 4, Number(features >> 32n));
    this.w(COMMON.DEVICE_STATUS, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    return (this.status & STATUS.FEATURES_OK) !== 0;
  }
  setupQueue(i: number, q: TestQueue, vector = 0xffff) {
    this.w(COMMON.QUEUE_SELECT, 2, i);
    this.w(COMMON.QUEUE_SIZE, 2, q.size);
    this.w(COMMON.QUEUE_MSIX_VECTOR, 2, vector);
    for (
      const [o, a] of [[COMMON.QUEUE_DESC, q.desc], [COMMON.QUEUE_DRIVER, q.avail], [
        COMMON.QUEUE_DEVICE,
        q.used,
      ]]
    ) {
      this.w(o, 4, a % 2 ** 32);
      this.w(o + 4, 4, Math.floor(a / 2 ** 32));
    }
    this.w(COMMON.QUEUE_ENABLE, 2, 1);
  }
  driverOk() {
    this.w(COMMON.DEVICE_STATUS, 1, this.status | STATUS.DRIVER_OK);
  }
  notify(i: number) {
    this.w(0x3000 + 4 * i, 2, i);
  }
}
