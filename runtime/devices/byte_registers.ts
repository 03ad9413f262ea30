/**
 * Models made of 8-bit registers at consecutive ports (the 16550 UART, the ACPI sleep
 * registers): a 16- or 32-bit access reaches the registers one after another, low byte
 * first, as the ISA bus splits it.
 */
import type { AccessSize } from "./device.ts";

/** A read of `size` bytes at `addr`, one register read per byte. */
export function readBytes(
  addr: number,
  size: AccessSize,
  readByte: (port: number) => number,
): number {
  let value = 0;
  for (let i = 0; i < size; i++) value |= readByte(addr + i) << (8 * i);
  return value >>> 0;
}

/** A write of `size` bytes at `addr`, one register write per byte. */
export function writeBytes(
  addr: number,
  size: AccessSize,
  value: number,
  writeByte: (port: number, byte: number) => void,
): void {
  for (let i = 0; i < size; i++) writeByte(addr + i, (value >>> (8 * i)) & 0xff);
}
