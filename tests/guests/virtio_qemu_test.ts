/**
 * The virtio guests under QEMU microvm, the reference: the same ELF files that
 * virtio_test.ts boots on vmdesc drive QEMU's virtio-blk and virtio-rng, over PCIe
 * (`-M microvm,pcie=on`, `virtio-*-pci,disable-legacy=on`: modern only, as vmdesc's) and
 * virtio-mmio (`virtio-*-device`, found through ACPI and, with acpi=off, through the
 * command line QEMU writes). So the drivers are proven against a device vmdesc did not
 * write, and vmdesc's devices (in virtio_test.ts) against drivers QEMU accepts. QEMU's
 * addresses differ from vmdesc's (its BARs are not even assigned): the guests find them.
 */
import assert from "node:assert/strict";
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import { microvm, qemuTest, runQemu } from "../qemu.ts";
import { assertImage, markedSector, tempImage } from "./virtio.ts";

async function qemu(
  guest: string,
  machine: { pcie: boolean; acpi?: boolean },
  devices: string[],
  cmdline: string,
) {
  await buildGuests([guest]);
  return await runQemu([
    ...microvm(machine),
    ...devices,
    "-kernel",
    guestPath(guest),
    "-append",
    cmdline,
  ]);
}

const drive = (path: string, readonly = false) => [
  "-drive",
  `if=none,id=d0,file=${path},format=raw${readonly ? ",readonly=on" : ""}`,
];

const BLK: { name: string; pcie: boolean; acpi?: boolean; dev: string; wait: string }[] = [
  { name: "PCIe, polling", pcie: true, dev: "virtio-blk-pci,disable-legacy=on", wait: "poll" },
  { name: "PCIe, MSI-X", pcie: true, dev: "virtio-blk-pci,disable-legacy=on", wait: "msix" },
  { name: "virtio-mmio from ACPI, line", pcie: false, dev: "virtio-blk-device", wait: "intx" },
  {
    name: "virtio-mmio from the command line, polling",
    pcie: false,
    acpi: false,
    dev: "virtio-blk-device",
    wait: "poll",
  },
  {
    name: "virtio-mmio from the command line, line",
    pcie: false,
    acpi: false,
    dev: "virtio-blk-device",
    wait: "intx",
  },
];

for (const c of BLK) {
  qemuTest(`virtio-blk guest under QEMU microvm: ${c.name}`, async () => {
    using img = tempImage();
    const r = await qemu(
      "virtio-blk",
      c,
      [...drive(img.path), "-device", `${c.dev},drive=d0,serial=qemu-disk`],
      `irq=${c.wait} sector=9`,
    );
    const t = c.pcie ? "pci" : "mmio";
    assert.match(
      r.output,
      new RegExp(`virtio-blk: ${t} ${c.wait} capacity 2048 sectors`),
      r.stderr,
    );
    assert.match(r.output, /sector 0 starts 564d444553432d544553542d4449534b/);
    assert.match(r.output, /wrote sector 9 and read it back/);
    assert.match(r.output, /past the end refused/);
    assert.match(r.output, /all ok/, r.output);
    assert.equal(r.status, 1, r.output + r.stderr);
    assertImage(img.path, img.original, 9, markedSector());
    // QEMU's virtio-mmio has no serial; its PCI one answers GET_ID with the drive's.
    if (c.pcie) assert.match(r.output, /serial "qemu-disk"/);
  });
}

qemuTest("virtio-blk guest under QEMU microvm: a read-only drive refuses the write", async () => {
  using img = tempImage();
  const r = await qemu(
    "virtio-blk",
    { pcie: true },
    [...drive(img.path, true), "-device", "virtio-blk-pci,disable-legacy=on,drive=d0"],
    "irq=msix expect_ro=1",
  );
  assert.match(r.output, /write refused \(read-only\)/, r.output + r.stderr);
  assert.equal(r.status, 1);
  assertImage(img.path, img.original);
});

for (
  const c of [
    { name: "PCIe, MSI-X", pcie: true, dev: "virtio-rng-pci,disable-legacy=on", wait: "msix" },
    { name: "virtio-mmio, line", pcie: false, dev: "virtio-rng-device", wait: "intx" },
  ]
) {
  qemuTest(`virtio-rng guest under QEMU microvm: ${c.name}`, async () => {
    const r = await qemu("virtio-rng", c, ["-device", c.dev], `irq=${c.wait} n=4096`);
    const m = /virtio-rng: \w+ \w+ 4096 bytes, (\d+) distinct/.exec(r.output);
    assert.ok(m, r.output + r.stderr);
    assert.ok(Number(m[1]) > 200);
    assert.equal(r.status, 1);
  });
}
