/** The address map: direct port table, MMIO binary search, overlaps refused. */
import { equal, throws } from "node:assert/strict";
import { AddressMap } from "./address_map.ts";
import type { Device } from "./devices/device.ts";
import { RuntimeError } from "./errors.ts";

function dev(id: string, ports: [number, number][], mmio: [number, number][]): Device {
  return {
    id,
    kind: "test",
    ports: ports.map(([base, size]) => ({ base, size })),
    mmio: mmio.map(([base, size]) => ({ base, size })),
    read: () => 0,
    write: () => {},
    reset: () => {},
    stats: () => ({}),
  };
}

Deno.test("address map: ports and MMIO ranges resolve to their device, gaps to -1", () => {
  const m = new AddressMap([
    dev("a", [[0x3f8, 8]], [[0xe000_0000, 0x1000_0000]]),
    dev("b", [[0xf4, 1], [0xcf8, 8]], [[0xfed0_0000, 0x1000], [0x1_0000_0000, 0x1000]]),
  ]);
  equal(m.port(0x3f8), 0);
  equal(m.port(0x3ff), 0);
  equal(m.port(0x400), -1);
  equal(m.port(0xf4), 1);
  equal(m.port(0xcfc), 1);
  equal(m.port(0xffff), -1);
  equal(m.mmio(0xe000_0000), 0);
  equal(m.mmio(0xefff_ffff), 0);
  equal(m.mmio(0xf000_0000), -1);
  equal(m.mmio(0xfed0_0fff), 1);
  equal(m.mmio(0xfed0_1000), -1);
  equal(m.mmio(0x1_0000_0800), 1);
  equal(m.mmio(0), -1);
});

Deno.test("address map: overlapping claims are refused with E1006", () => {
  const e1006 = (e: unknown) => e instanceof RuntimeError && e.code === "E1006";
  throws(() => new AddressMap([dev("a", [[0x60, 1]], []), dev("b", [[0x60, 4]], [])]), e1006);
  throws(
    () => new AddressMap([dev("a", [], [[0x1000, 0x2000]]), dev("b", [], [[0x2000, 0x10]])]),
    e1006,
  );
});
