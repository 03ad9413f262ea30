/**
 * One PCI function's type-0 configuration space: 4 KiB (256 bytes of legacy header and
 * capabilities + extended space), with per-byte masks that say what the guest may change.
 *
 * The bytes live in a Uint8Array that may belong to someone else: under the `shadow` hole
 * strategy it IS the private page mapped into the read-only ECAM memslot, so every write
 * applied here is what the guest's next (exit-less) read returns. Nothing else caches the
 * contents; `read()` always reads the bytes.
 *
 * Write semantics per byte (as QEMU models it): new = (old & ~wmask) | (value & wmask),
 * then bits set in both `value` and `w1cmask` are cleared (RW1C status bits).
 * BARs get a wmask of ~(size - 1) over their address bits, which makes the sizing protocol
 * fall out by itself: writing all-ones reads back the size mask with the type bits.
 */
import type { BarPlan } from "../../../plan/types.ts";
import type { PciCapability } from "../device.ts";

export const CONFIG_SPACE_SIZE = 4096;

// Standard header offsets (PCI Local Bus 3.0, type 0).
export const REG = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION: 0x08,
  CLASS_PROG: 0x09,
  CACHE_LINE: 0x0c,
  LATENCY: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  BAR0: 0x10,
  SUBSYS_VENDOR: 0x2c,
  SUBSYS_ID: 0x2e,
  ROM: 0x30,
  CAP_PTR: 0x34,
  INT_LINE: 0x3c,
  INT_PIN: 0x3d,
} as const;

export const COMMAND_IO = 0x0001;
export const COMMAND_MEMORY = 0x0002;
export const COMMAND_MASTER = 0x0004;
const COMMAND_PARITY = 0x0040;
const COMMAND_SERR = 0x0100;
const COMMAND_INTX_DISABLE = 0x0400;
/** What a guest may set in the command register of our functions. */
export const COMMAND_WMASK = COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER | COMMAND_PARITY |
  COMMAND_SERR | COMMAND_INTX_DISABLE;
export const STATUS_CAP_LIST = 0x0010;
/** Error bits of the status register: write 1 to clear. */
export const STATUS_W1C = 0xf900;

/** Everything needed to build the power-on contents of one function. */
export interface ConfigSpaceInit {
  vendorId: number;
  deviceId: number;
  classCode: number;
  revision: number;
  headerType: number;
  subsystemVendorId: number;
  subsystemId: number;
  bars: readonly BarPlan[];
  interruptPin: number;
  /** Value firmware leaves in the interrupt line register (the GSI), 0xff = unknown. */
  interruptLine: number;
  command: number;
  /** Capabilities, chained from 0x40 in the order given. */
  capabilities?: readonly Capability[];
  /**
   * BARs stay where the Plan put them: a BAR write is kept only when it is the sizing
   * pattern (all ones) or the BAR's own address; anything else reverts (counted in
   * `barMovesRefused`). For functions whose model decodes its BARs at a fixed address.
   */
  pinBars?: boolean;
}

export type Capability = PciCapability;

export class ConfigSpace {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #init: Uint8Array = new Uint8Array(CONFIG_SPACE_SIZE);
  readonly #wmask: Uint8Array = new Uint8Array(CONFIG_SPACE_SIZE);
  readonly #w1cmask: Uint8Array = new Uint8Array(CONFIG_SPACE_SIZE);
  readonly #pinBars: boolean;
  /** Where each capability landed, in the order given. */
  readonly capabilityOffsets: readonly number[];
  /** BAR writes reverted under `pinBars`. */
  barMovesRefused = 0;

  constructor(init: ConfigSpaceInit, backing?: Uint8Array) {
    if (backing && backing.length < CONFIG_SPACE_SIZE) {
      throw new RangeError(`config space backing is ${backing.length} bytes, needs 4096`);
    }
    this.#bytes = backing ?? new Uint8Array(CONFIG_SPACE_SIZE);
    this.#view = new DataView(this.#bytes.buffer, this.#bytes.byteOffset, CONFIG_SPACE_SIZE);
    this.capabilityOffsets = buildImage(init, this.#init, this.#wmask, this.#w1cmask);
    this.#pinBars = init.pinBars === true;
    this.#bytes.set(this.#init);
  }

  /** The live bytes (the shadow page when one is bound). */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Back to the power-on contents (in place, so a bound shadow page follows). */
  reset(): void {
    this.#bytes.set(this.#init);
  }

  /** Little-endian read of `size` bytes at `offset` (0..4095); bytes past the end read 0xff. */
  read(offset: number, size: number): number {
    if (size === 4 && (offset & 3) === 0 && offset < CONFIG_SPACE_SIZE) {
      return this.#view.getUint32(offset, true);
    }
    const b = this.#bytes;
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const o = offset + i;
      value = value * 256 + (o < CONFIG_SPACE_SIZE ? b[o] : 0xff);
    }
    return value >>> 0;
  }

  write(offset: number, size: number, value: number): void {
    const b = this.#bytes;
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      if (o >= CONFIG_SPACE_SIZE) break;
      const v = (value >>> (8 * i)) & 0xff;
      const wm = this.#wmask[o];
      const w1c = this.#w1cmask[o];
      b[o] = ((b[o] & ~wm) | (v & wm)) & ~(v & w1c);
    }
    if (this.#pinBars && offset < REG.BAR0 + 24 && offset + size > REG.BAR0) this.#pin();
  }

  /** A write by the device model itself: the bytes as given, no masks. */
  set(offset: number, size: number, value: number): void {
    for (let i = 0; i < size && offset + i < CONFIG_SPACE_SIZE; i++) {
      this.#bytes[offset + i] = (value >>> (8 * i)) & 0xff;
    }
  }

  /** Each BAR register holds its own address or the sizing answer; else it reverts. */
  #pin(): void {
    for (let o = REG.BAR0; o < REG.BAR0 + 24; o += 4) {
      const mask = this.#view.getUint32(o, true);
      const init = readU32(this.#init, o);
      const wm = readU32(this.#wmask, o);
      if (wm === 0 || mask === init) continue;
      // The sizing answer: every writable bit set, the read-only ones as they were.
      if (mask === ((init & ~wm) | wm) >>> 0) continue;
      this.#view.setUint32(o, init, true);
      this.barMovesRefused++;
    }
  }
}

function readU32(a: Uint8Array, o: number): number {
  return (a[o] | (a[o + 1] << 8) | (a[o + 2] << 16) | (a[o + 3] << 24)) >>> 0;
}

function put16(a: Uint8Array, o: number, v: number): void {
  a[o] = v & 0xff;
  a[o + 1] = (v >>> 8) & 0xff;
}

function put32(a: Uint8Array, o: number, v: number): void {
  put16(a, o, v & 0xffff);
  put16(a, o + 2, (v >>> 16) & 0xffff);
}

/** Fills the power-on image and masks; returns where each capability landed. */
function buildImage(
  init: ConfigSpaceInit,
  img: Uint8Array,
  wmask: Uint8Array,
  w1c: Uint8Array,
): number[] {
  put16(img, REG.VENDOR_ID, init.vendorId);
  put16(img, REG.DEVICE_ID, init.deviceId);
  put16(img, REG.COMMAND, init.command & COMMAND_WMASK);
  img[REG.REVISION] = init.revision & 0xff;
  img[REG.CLASS_PROG] = init.classCode & 0xff;
  img[REG.CLASS_PROG + 1] = (init.classCode >>> 8) & 0xff;
  img[REG.CLASS_PROG + 2] = (init.classCode >>> 16) & 0xff;
  img[REG.HEADER_TYPE] = init.headerType & 0xff;
  put16(img, REG.SUBSYS_VENDOR, init.subsystemVendorId);
  put16(img, REG.SUBSYS_ID, init.subsystemId);
  img[REG.INT_PIN] = init.interruptPin & 0xff;
  img[REG.INT_LINE] = init.interruptLine & 0xff;

  put16(wmask, REG.COMMAND, COMMAND_WMASK);
  put16(w1c, REG.STATUS, STATUS_W1C);
  wmask[REG.CACHE_LINE] = 0xff;
  wmask[REG.LATENCY] = 0xff;
  wmask[REG.INT_LINE] = 0xff;

  for (const bar of init.bars) writeBar(bar, img, wmask);

  const caps = init.capabilities ?? [];
  const offsets: number[] = [];
  if (caps.length > 0) {
    let at = 0x40;
    let prevNext = REG.CAP_PTR;
    for (const cap of caps) {
      const len = (2 + cap.body.length + 3) & ~3;
      if (at + len > 0x100) throw new RangeError("capabilities do not fit in 256 bytes");
      img[prevNext] = at;
      img[at] = cap.id;
      img[at + 1] = 0;
      img.set(cap.body, at + 2);
      if (cap.wmask) wmask.set(cap.wmask.subarray(0, cap.body.length), at + 2);
      offsets.push(at);
      prevNext = at + 1;
      at += len;
    }
    put16(img, REG.STATUS, STATUS_CAP_LIST);
  }
  return offsets;
}

function writeBar(bar: BarPlan, img: Uint8Array, wmask: Uint8Array): void {
  const off = REG.BAR0 + 4 * bar.index;
  const size = bar.size;
  if (bar.kind === "io") {
    // Bit 0 = I/O space; bit 1 reserved.
    put32(img, off, ((bar.address & ~(size - 1)) | 0x1) >>> 0);
    put32(wmask, off, (~(size - 1) & 0xfffffffc) >>> 0);
    return;
  }
  const flags = (bar.kind === "mem64" ? 0x4 : 0x0) | (bar.prefetchable ? 0x8 : 0);
  const low = Number(BigInt(bar.address) & 0xffffffffn);
  put32(img, off, ((low & 0xfffffff0) | flags) >>> 0);
  // Address bits below the size are hardwired to 0 (that is what sizing reads back).
  const sizeMaskLow = size >= 2 ** 32 ? 0 : (~(size - 1) & 0xfffffff0) >>> 0;
  put32(wmask, off, sizeMaskLow);
  if (bar.kind === "mem64") {
    const high = Math.floor(bar.address / 2 ** 32);
    put32(img, off + 4, high >>> 0);
    const sizeMaskHigh = size > 2 ** 32
      ? Number(~(BigInt(size) - 1n) >> 32n & 0xffffffffn)
      : 0xffffffff;
    put32(wmask, off + 4, sizeMaskHigh >>> 0);
  }
}
