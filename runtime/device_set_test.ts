/**
 * The device set under the `shadow` hole strategy, without /dev/kvm: memory hands out the
 * present functions' config pages, the pci_host claims its own, a page nobody presents
 * stays all-ones, and Plans whose pages and devices disagree are refused (E1006).
 * Plus the context every model gets: guest RAM only, bounds-checked.
 */
import assert from "node:assert/strict";
import { type DeviceHost, DeviceSet } from "./device_set.ts";
import { GuestMemory, type RegionInfo } from "./memory/mod.ts";
import { RuntimeError } from "./errors.ts";
import { devicePlan, minimalPlan, pciFunction } from "./devices/testing.ts";
import type { DeviceContext, DeviceFactory } from "./devices/device.ts";
import { DEVICE_MODELS } from "./devices/registry.ts";
import type { Plan } from "../plan/types.ts";

const ECAM = 0xe000_0000;
const MiB = 1 << 20;

/** A Plan with one bus of ECAM backed by a ones_alias slot listing `present` pages. */
function shadowPlan(present: string[], withBridge: boolean): Plan {
  const plan = minimalPlan({
    pci: [pciFunction({ bus: 0, device: 3, function: 0, vendor_id: 0x1af4, device_id: 0x1005 })],
    ecam: { base: ECAM, bus_start: 0, bus_end: 0 },
  });
  plan.memslots = [
    {
      slot: 0,
      name: "ram",
      guest_phys: 0,
      size: MiB,
      flags: [],
      backing: { kind: "anonymous" },
    },
    {
      slot: 1,
      name: "ecam-shadow",
      guest_phys: ECAM,
      size: MiB,
      flags: ["readonly"],
      backing: {
        kind: "ones_alias",
        chunk_size: MiB,
        present: present.map((bdf) => {
          const [bus, rest] = bdf.split(":");
          const [dev, fn] = rest.split(".");
          const offset = (parseInt(bus, 16) << 20) | (parseInt(dev, 16) << 15) |
            (Number(fn) << 12);
          return { bdf, offset };
        }),
      },
    },
  ];
  if (withBridge) {
    plan.devices = [
      devicePlan({ id: "pci_host", kind: "pci_host", ports: [{ base: 0xcf8, size: 8 }] }),
    ];
  }
  return plan;
}

/** Memory as the VMM would map it: RAM zeroed, the ECAM window all-ones (memory's doing). */
function memoryFor(plan: Plan): { memory: GuestMemory; ecam: Uint8Array } {
  const regions: RegionInfo[] = plan.memslots.map((m) => ({
    name: m.name,
    guestPhys: m.guest_phys,
    size: m.size,
    hostAddr: "0",
    readonly: m.flags.includes("readonly"),
    ram: m.backing.kind === "anonymous",
  }));
  const ram = new Uint8Array(MiB);
  const ecam = new Uint8Array(MiB).fill(0xff);
  return { memory: new GuestMemory(regions, [ram, ecam]), ecam };
}

function host(memory: GuestMemory): DeviceHost {
  return {
    setIrq: () => {},
    signalMsi: () => true,
    requestStop: () => {},
    output: () => {},
    warn: () => {},
    memory,
    stdinDevice: null,
  };
}

const u32 = (b: Uint8Array, off: number) =>
  new DataView(b.buffer, b.byteOffset + off, 4).getUint32(0, true);

Deno.test("device set: the pci_host fills the shadow pages it presents; others stay all-ones", () => {
  const plan = shadowPlan(["00:00.0", "00:03.0", "00:05.0"], true);
  const { memory, ecam } = memoryFor(plan);
  const set = DeviceSet.build(plan, host(memory));
  try {
    assert.equal(u32(ecam, 3 << 15), 0x10051af4, "00:03.0's config space is in its page");
    assert.equal(u32(ecam, 0) & 0xffff, 0x1b36, "the host bridge at 00:00.0 too");
    assert.equal(u32(ecam, 5 << 15), 0xffffffff, "a page no device presents reads as absent");
    // A config write through the model lands in the page the guest reads without an exit.
    set.devices[0].write("mmio", ECAM + (3 << 15) + 0x3c, 1, 0x0b);
    assert.equal(ecam[(3 << 15) + 0x3c], 0x0b);
  } finally {
    set.close();
  }
});

Deno.test("device set: shadow pages without a device presenting them are refused (E1006)", () => {
  const plan = shadowPlan(["00:00.0", "00:03.0"], false);
  assert.throws(
    () => DeviceSet.build(plan, host(memoryFor(plan).memory)),
    (e: unknown) =>
      e instanceof RuntimeError && e.code === "E1006" &&
      e.message === "the Plan has shadow config pages but no pci_host device",
  );
});

Deno.test("device set: a present function without its shadow page is refused (E1006)", () => {
  const plan = shadowPlan(["00:00.0"], true);
  assert.throws(
    () => DeviceSet.build(plan, host(memoryFor(plan).memory)),
    (e: unknown) =>
      e instanceof RuntimeError && e.code === "E1006" &&
      e.message === "PCI function 00:03.0 has no config page in the shadow ECAM memslot",
  );
});

Deno.test("device set: models get guest RAM only, bounds-checked", () => {
  const plan = shadowPlan(["00:00.0", "00:03.0"], true);
  const { memory } = memoryFor(plan);
  let ctx: DeviceContext | null = null;
  const models = new Map<string, DeviceFactory>([
    ["pci_host", (entry, c, p) => {
      ctx = c;
      return DEVICE_MODELS.get("pci_host")!(entry, c, p);
    }],
  ]);
  const set = DeviceSet.build(plan, host(memory), models);
  try {
    const ram = ctx!.memory;
    assert.equal(ram.isRam(0, MiB), true);
    assert.equal(ram.isRam(ECAM, 4), false, "the ECAM window is not RAM");
    assert.equal(ram.view(ECAM, 4), null, "no view of it either");
    assert.throws(() => ram.read(MiB - 2, 4), RangeError, "a read running past RAM");
    assert.throws(() => ram.write(ECAM, new Uint8Array(1)), RangeError);
    ram.write(0x1000, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...memory.read(0x1000, 3)], [1, 2, 3], "the same bytes as the VMM's view");
    assert.equal(ctx!.signalMsi(0xfee0_0000, 0x40), true, "MSIs reach the host's injector");
  } finally {
    set.close();
  }
});
