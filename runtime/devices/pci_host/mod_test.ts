import assert from "node:assert/strict";
import {
  createPciHost,
  HOST_BRIDGE_DEVICE,
  HOST_BRIDGE_VENDOR,
  presentPciFunctions,
} from "./mod.ts";
import { devicePlan, minimalPlan, pciFunction, recordingContext } from "../testing.ts";
import { RuntimeError } from "../../errors.ts";
import type { PciFunctionPlan } from "../../../plan/types.ts";
import type { DeviceContext } from "../device.ts";

const ECAM = 0xe0000000;

function setup(
  pci: PciFunctionPlan[],
  opts: Pick<DeviceContext, "shadowConfigPage"> = {},
  busStart = 0,
) {
  const ctx = { ...recordingContext(), ...opts };
  const plan = minimalPlan({
    pci,
    ecam: { base: ECAM, bus_start: busStart, bus_end: busStart + 15 },
  });
  const host = createPciHost(
    devicePlan({ id: "pci_host", kind: "pci_host", ports: [{ base: 0xcf8, size: 8 }] }),
    ctx,
    plan,
  );
  const ecamAddr = (bus: number, dev: number, fn: number, reg: number) =>
    ECAM + (bus - busStart) * 0x100000 + dev * 0x8000 + fn * 0x1000 + reg;
  const ecamRead = (bus: number, dev: number, fn: number, reg: number, size: 1 | 2 | 4 = 4) =>
    host.read("mmio", ecamAddr(bus, dev, fn, reg), size);
  const ecamWrite = (
    bus: number,
    dev: number,
    fn: number,
    reg: number,
    v: number,
    size: 1 | 2 | 4 = 4,
  ) => host.write("mmio", ecamAddr(bus, dev, fn, reg), size, v);
  const cf8Addr = (bus: number, dev: number, fn: number, reg: number) =>
    (0x80000000 | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xfc)) >>> 0;
  const cf8Read = (bus: number, dev: number, fn: number, reg: number, size: 1 | 2 | 4 = 4) => {
    host.write("pio", 0xcf8, 4, cf8Addr(bus, dev, fn, reg));
    return host.read("pio", 0xcfc + (reg & 3), size);
  };
  const cf8Write = (
    bus: number,
    dev: number,
    fn: number,
    reg: number,
    v: number,
    size: 1 | 2 | 4 = 4,
  ) => {
    host.write("pio", 0xcf8, 4, cf8Addr(bus, dev, fn, reg));
    host.write("pio", 0xcfc + (reg & 3), size, v);
  };
  return { ctx, host, ecamRead, ecamWrite, cf8Read, cf8Write };
}

const generic = pciFunction({
  bus: 0,
  device: 3,
  function: 0,
  vendor_id: 0x1af4,
  device_id: 0x1005,
  class_code: 0x00ff00,
  revision: 1,
  bars: [
    { index: 0, kind: "mem32", size: 4096, address: 0xc0001000, prefetchable: false },
    { index: 2, kind: "mem64", size: 0x100000, address: 0x8_0010_0000, prefetchable: true },
    { index: 4, kind: "io", size: 32, address: 0xc020, prefetchable: false },
  ],
  interrupt_pin: 1,
  irq: 11,
});

Deno.test("pci_host: host bridge at 00:00.0, declared function, absent reads all-ones", () => {
  const { ecamRead, cf8Read, host } = setup([generic]);
  assert.equal(ecamRead(0, 0, 0, 0), (HOST_BRIDGE_DEVICE << 16 | HOST_BRIDGE_VENDOR) >>> 0);
  assert.equal(ecamRead(0, 0, 0, 8) >>> 8, 0x060000, "class: host bridge");
  assert.equal(ecamRead(0, 3, 0, 0), 0x10051af4);
  assert.equal(ecamRead(0, 3, 0, 8), 0x00ff0001);
  assert.equal(ecamRead(0, 4, 0, 0), 0xffffffff);
  assert.equal(ecamRead(0, 3, 1, 0, 2), 0xffff);
  assert.equal(cf8Read(7, 3, 0, 0, 1), 0xff);
  assert.deepEqual(host.functions.map((f) => f.bdf), ["00:00.0", "00:03.0"]);
  assert.equal(host.stats().absent_reads, 3);
});

Deno.test("pci_host: CF8 and ECAM reach the same config space, every width and offset", () => {
  const { ecamRead, ecamWrite, cf8Read, cf8Write } = setup([generic]);
  for (let reg = 0; reg < 0x40; reg++) {
    for (const size of [1, 2, 4] as const) {
      if ((reg & 3) + size > 4) continue;
      assert.equal(
        cf8Read(0, 3, 0, reg, size),
        ecamRead(0, 3, 0, reg, size),
        `reg ${reg} size ${size}`,
      );
    }
  }
  cf8Write(0, 3, 0, 0x3c, 0x0a, 1); // interrupt line by CF8
  assert.equal(ecamRead(0, 3, 0, 0x3c, 1), 0x0a);
  ecamWrite(0, 3, 0, 0x0c, 0x10, 1); // cache line size by ECAM
  assert.equal(cf8Read(0, 3, 0, 0x0c, 1), 0x10);
  cf8Write(0, 3, 0, 0x0e, 0x01, 2); // 0x0e: header type is read-only, not changed
  assert.equal(ecamRead(0, 3, 0, 0x0e, 1), 0x00);
});

Deno.test("pci_host: BAR sizing round trip for mem32, mem64 (prefetchable) and io", () => {
  const { ecamRead, ecamWrite, cf8Read, cf8Write } = setup([generic]);
  // Initially programmed with the Plan's addresses.
  assert.equal(ecamRead(0, 3, 0, 0x10), 0xc0001000);
  assert.equal(ecamRead(0, 3, 0, 0x18), 0x0010000c, "mem64 | prefetchable, low half");
  assert.equal(ecamRead(0, 3, 0, 0x1c), 0x8, "high half");
  assert.equal(ecamRead(0, 3, 0, 0x20), 0xc021, "io bit");
  assert.equal(ecamRead(0, 3, 0, 0x14), 0, "unimplemented BAR 1");

  const size = (reg: number, read: typeof ecamRead, write: typeof ecamWrite) => {
    const old = read(0, 3, 0, reg);
    write(0, 3, 0, reg, 0xffffffff);
    const mask = read(0, 3, 0, reg);
    write(0, 3, 0, reg, old);
    assert.equal(read(0, 3, 0, reg), old, "restored");
    return mask;
  };
  assert.equal(size(0x10, ecamRead, ecamWrite), 0xfffff000);
  assert.equal(size(0x10, cf8Read, cf8Write), 0xfffff000);
  assert.equal(size(0x18, ecamRead, ecamWrite), 0xfff0000c);
  assert.equal(size(0x1c, ecamRead, ecamWrite), 0xffffffff);
  assert.equal(size(0x20, cf8Read, cf8Write), 0xffffffe1);
  assert.equal(size(0x14, ecamRead, ecamWrite), 0);
  assert.equal(size(0x30, ecamRead, ecamWrite), 0, "no expansion ROM");
  // Reprogramming moves the BAR; the low bits stay what the size forces.
  ecamWrite(0, 3, 0, 0x10, 0xd0000123);
  assert.equal(cf8Read(0, 3, 0, 0x10), 0xd0000000);
});

Deno.test("pci_host: command writable bits, status RW1C, read-only IDs", () => {
  const { ecamRead, ecamWrite } = setup([generic]);
  assert.equal(ecamRead(0, 3, 0, 4, 2), 0x0003, "firmware enabled io + mem decoding");
  ecamWrite(0, 3, 0, 4, 0xffff, 2);
  assert.equal(ecamRead(0, 3, 0, 4, 2), 0x0547);
  ecamWrite(0, 3, 0, 0, 0xdeadbeef);
  assert.equal(ecamRead(0, 3, 0, 0), 0x10051af4);
  ecamWrite(0, 3, 0, 6, 0xffff, 2);
  assert.equal(ecamRead(0, 3, 0, 6, 2), 0, "RW1C bits clear, nothing set");
  assert.equal(ecamRead(0, 3, 0, 0x3c, 2), 0x010b, "pin INTA, line 11");
});

Deno.test("pci_host: writes to absent functions are ignored and counted", () => {
  const { ecamRead, ecamWrite, cf8Write, host } = setup([generic]);
  ecamWrite(0, 9, 0, 0x10, 0);
  cf8Write(0, 9, 0, 0x10, 0);
  assert.equal(ecamRead(0, 9, 0, 0x10), 0xffffffff);
  assert.equal(host.stats().absent_writes, 2);
});

Deno.test("pci_host: CF8 enable bit, address register read back, CF9 reset", () => {
  const { host, ctx } = setup([generic]);
  host.write("pio", 0xcf8, 4, 0x80000000);
  assert.equal(host.read("pio", 0xcf8, 4), 0x80000000);
  host.write("pio", 0xcf8, 4, 0x00001800); // 00:03.0 reg 0, enable clear
  assert.equal(host.read("pio", 0xcfc, 4), 0xffffffff);
  host.write("pio", 0xcf9, 1, 0x02);
  assert.equal(ctx.stops.length, 0);
  host.write("pio", 0xcf9, 1, 0x06);
  assert.deepEqual(ctx.stops, [{ kind: "reset", source: "pci_host" }]);
});

Deno.test("pci_host: ECAM bus numbers are offset by bus_start", () => {
  const fn = pciFunction({ bus: 0x10, device: 1, function: 2, vendor_id: 0xabcd, device_id: 0x1 });
  const { ecamRead, cf8Read, host } = setup([fn], {}, 0x10);
  assert.equal(ecamRead(0x10, 1, 2, 0), 0x0001abcd);
  assert.equal(cf8Read(0x10, 1, 2, 0), 0x0001abcd);
  assert.equal(ecamRead(0x10, 0, 0, 0, 2), HOST_BRIDGE_VENDOR, "bridge on the first ECAM bus");
  assert.equal(host.read("mmio", ECAM - 4, 4), 0xffffffff);
});

Deno.test("pci_host: the shadow page the context hands out IS the config space", () => {
  const pages = new Map<string, Uint8Array>();
  const { ecamWrite, host } = setup([generic], {
    shadowConfigPage: (bdf) => {
      const page = new Uint8Array(4096).fill(0xff);
      pages.set(bdf, page);
      return page;
    },
  });
  assert.deepEqual([...pages.keys()].sort(), ["00:00.0", "00:03.0"]);
  const page = pages.get("00:03.0")!;
  const view = new DataView(page.buffer);
  assert.equal(view.getUint32(0, true), 0x10051af4, "initial contents written into the page");
  assert.equal(view.getUint32(0x100, true), 0, "extended space: no capabilities");
  ecamWrite(0, 3, 0, 0x10, 0xffffffff);
  assert.equal(view.getUint32(0x10, true), 0xfffff000, "a write is visible in the page at once");
  host.reset();
  assert.equal(view.getUint32(0x10, true), 0xc0001000, "reset restores in place");
  assert.equal(host.configBytes("00:03.0"), page);
});

Deno.test("pci_host: under shadow, a function in the ECAM window without a page is refused", () => {
  const onBus1 = pciFunction({ bus: 1, device: 0, function: 0 });
  const pageFor = (bdfs: string[]) => (bdf: string) =>
    bdfs.includes(bdf) ? new Uint8Array(4096) : undefined;
  assert.throws(
    () => setup([generic, onBus1], { shadowConfigPage: pageFor(["00:00.0", "00:03.0"]) }),
    (e: unknown) =>
      e instanceof RuntimeError && e.code === "E1006" &&
      e.message === "PCI function 01:00.0 has no config page in the shadow ECAM memslot",
  );
  // Bus 0x20 is outside the window (buses 0-15): reachable through CF8/CFC, no page needed.
  const outside = pciFunction({ bus: 0x20, device: 0, function: 0, vendor_id: 0xabcd });
  const { cf8Read, ecamRead } = setup([generic, outside], {
    shadowConfigPage: pageFor(["00:00.0", "00:03.0"]),
  });
  assert.equal(cf8Read(0x20, 0, 0, 0, 2), 0xabcd);
  assert.equal(ecamRead(0, 3, 0, 0), 0x10051af4);
});

Deno.test("pci_host: virtio kinds fill in real IDs; presentPciFunctions lists the bridge", () => {
  const rng = pciFunction({
    bus: 0,
    device: 2,
    function: 0,
    kind: "virtio_rng",
    vendor_id: 0,
    device_id: 0,
    class_code: 0,
  });
  const { ecamRead } = setup([rng]);
  assert.equal(ecamRead(0, 2, 0, 0), 0x10051af4);
  assert.equal(ecamRead(0, 2, 0, 0x2c), 0x00041af4, "subsystem = virtio device type 4");
  const plan = minimalPlan({ pci: [rng] });
  assert.deepEqual(presentPciFunctions(plan).map((f) => [f.bdf, f.kind]), [
    ["00:00.0", "host_bridge"],
    ["00:02.0", "virtio_rng"],
  ]);
});
