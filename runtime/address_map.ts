/**
 * The address map: which device answers which port or MMIO address, built once at start.
 *
 * Ports: a direct table of 65536 Int16 entries (128 KiB) holding a device index or -1:
 * one array load per exit, nothing to search. MMIO: the claimed ranges sorted by base in
 * flat typed arrays, found by binary search (a handful of ranges; a lookup is a few
 * compares). Overlaps are refused here too, although the compiler already rejects them.
 */
import type { Device } from "./devices/device.ts";
import { RuntimeError } from "./errors.ts";

export class AddressMap {
  readonly devices: Device[];
  readonly portIndex = new Int16Array(65536).fill(-1);
  readonly mmioBase: Float64Array;
  readonly mmioEnd: Float64Array;
  readonly mmioDev: Int16Array;

  constructor(devices: Device[]) {
    this.devices = devices;
    const ranges: { base: number; end: number; dev: number }[] = [];
    devices.forEach((d, i) => {
      for (const r of d.ports) {
        for (let p = r.base; p < r.base + r.size; p++) {
          if (p > 0xffff) {
            throw new RuntimeError(
              "E1006",
              `device ${d.id}: port 0x${p.toString(16)} beyond 0xffff`,
              null,
            );
          }
          const prev = this.portIndex[p];
          if (prev >= 0) {
            throw new RuntimeError(
              "E1006",
              `devices ${devices[prev].id} and ${d.id} both claim port 0x${p.toString(16)}`,
              "the Plan has overlapping port ranges",
            );
          }
          this.portIndex[p] = i;
        }
      }
      for (const r of d.mmio) ranges.push({ base: r.base, end: r.base + r.size, dev: i });
    });
    ranges.sort((a, b) => a.base - b.base);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i].base < ranges[i - 1].end) {
        throw new RuntimeError(
          "E1006",
          `devices ${devices[ranges[i - 1].dev].id} and ${
            devices[ranges[i].dev].id
          } overlap in MMIO at 0x${ranges[i].base.toString(16)}`,
          "the Plan has overlapping MMIO ranges",
        );
      }
    }
    this.mmioBase = Float64Array.from(ranges, (r) => r.base);
    this.mmioEnd = Float64Array.from(ranges, (r) => r.end);
    this.mmioDev = Int16Array.from(ranges, (r) => r.dev);
  }

  /** Device index for a port, or -1. */
  port(p: number): number {
    return this.portIndex[p];
  }

  /** Device index for an MMIO address, or -1. */
  mmio(addr: number): number {
    const base = this.mmioBase;
    let lo = 0;
    let hi = base.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (addr < base[mid]) hi = mid - 1;
      else if (addr >= this.mmioEnd[mid]) lo = mid + 1;
      else return this.mmioDev[mid];
    }
    return -1;
  }
}
