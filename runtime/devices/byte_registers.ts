/**
 * Models made of 8-bit registers at consecutive ports (the 16550 UART, the ACPI sleep
 * registers): a 16- or 32-bit access reaches the registers one after another, low byte
 * first, as the ISA bus splits it.
 */
import type { AccessSize, Device } from "./device.ts";

/** Where such a model counts its accesses (shown by `boot --stats`). */
export interface AccessCounters {
  reads: number;
  writes: number;
}

/**
 * A Device's `read` and `write` for 8-bit registers: each access counted once in
 * `counters`, then split into one `readByte`/`writeByte` per byte (`port` is the byte's own).
 */
export function byteRegisters(
  counters: AccessCounters,
  readByte: (port: number) => number,
  writeByte: (port: number, byte: number) => void,
): Pick<Device, "read" | "write"> {
  return {
    read(_space, addr: number, size: AccessSize): number {
      counters.reads++;
      let value = 0;
      for (let i = 0; i < size; i++) value |= readByte(addr + i) << (8 * i);
      return value >>> 0;
    },
    write(_space, addr: number, size: AccessSize, value: number): void {
      counters.writes++;
      for (let i = 0; i < size; i++) writeByte(addr + i, (value >>> (8 * i)) & 0xff);
    },
  };
}
