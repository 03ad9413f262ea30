import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { RuntimeError } from "../errors.ts";
import { samplePlan } from "./acpi/testing.ts";
import { HDR, parseBzImage } from "./bzimage.ts";
import { fakeBzImage } from "./bzimage_testing.ts";
import {
  buildZeroPage,
  encodeCmdline,
  ENTRY_64_OFFSET,
  placeInitrd,
  placeKernel,
  placeLinux,
  ZP,
} from "./linux.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function isCode(code: string) {
  return (e: unknown) => e instanceof RuntimeError && e.code === code && !!e.hint;
}

Deno.test("linux: the kernel goes to its preferred address when RAM is there", () => {
  const bz = parseBzImage(fakeBzImage({ prefAddress: 16 * MiB, initSize: 50 * MiB }), "k");
  const p = placeLinux(samplePlan(), bz, null);
  assertEquals(p.loadAddr, 16 * MiB);
  assertEquals(p.entry, 16 * MiB + ENTRY_64_OFFSET);
  assertEquals(p.loadSize, 50 * MiB);
  assertEquals(p.initrd, null);
});

Deno.test("linux: a relocatable kernel moves to an aligned address that fits", () => {
  const plan = samplePlan();
  // RAM with a reserved gap over the preferred address.
  plan.e820 = [
    { addr: 0, size: 0x9fc00, type: "ram" },
    { addr: 0x100000, size: 15 * MiB, type: "ram" },
    { addr: 16 * MiB, size: 4 * MiB, type: "reserved" },
    { addr: 20 * MiB + 4096, size: 200 * MiB, type: "ram" },
  ];
  const bz = parseBzImage(fakeBzImage({ prefAddress: 16 * MiB, initSize: 30 * MiB }), "k");
  const k = placeKernel(plan, bz.header, bz.kernel.length);
  assertEquals(k.loadAddr, 22 * MiB); // 20 MiB + 4 KiB rounded up to 2 MiB
  const fixed = parseBzImage(
    fakeBzImage({ prefAddress: 16 * MiB, initSize: 30 * MiB, relocatable: false }),
    "k",
  );
  assertThrows(() => placeKernel(plan, fixed.header, fixed.kernel.length), isCode("E1016"));
});

Deno.test("linux: the initrd goes as high as allowed, below the hole and the kernel's limit", () => {
  const plan = samplePlan();
  const bz = parseBzImage(fakeBzImage({ initrdAddrMax: 0x7fff_ffff }), "k");
  const k = placeKernel(plan, bz.header, bz.kernel.length);
  const size = 10 * MiB + 123;
  const at = placeInitrd(plan, bz.header, size, k);
  assertEquals(at % 4096, 0);
  assert(at + size <= 0x8000_0000);
  assert(0x8000_0000 - (at + size) < 4096, "as high as it goes");
  // With a higher limit it stays in RAM below the hole (3 GiB - the ACPI area here).
  const hi = parseBzImage(fakeBzImage({ initrdAddrMax: 0xffff_ffff }), "k");
  const at2 = placeInitrd(plan, hi.header, size, k);
  assert(at2 + size <= 3 * GiB - 0x10000);
  assert(at2 > 2 * GiB);
});

Deno.test("linux: an initrd that does not fit is E1015", () => {
  const plan = samplePlan();
  const bz = parseBzImage(fakeBzImage({ initrdAddrMax: 64 * MiB - 1 }), "k");
  const k = placeKernel(plan, bz.header, bz.kernel.length); // 16..32 MiB
  // Below 64 MiB: 1..16 MiB and 32..64 MiB are free; 40 MiB fits in neither.
  assertThrows(() => placeInitrd(plan, bz.header, 40 * MiB, k), isCode("E1015"));
  const at = placeInitrd(plan, bz.header, 30 * MiB, k);
  assertEquals(at, 34 * MiB);
});

Deno.test("linux: the zero page carries the header, loader fields, e820 and RSDP", () => {
  const plan = samplePlan();
  const file = fakeBzImage();
  const bz = parseBzImage(file, "k");
  const p = placeLinux(plan, bz, 5 * MiB);
  const zp = buildZeroPage(plan, bz, p, 0xe0000);
  const dv = new DataView(zp.buffer);
  assertEquals(zp.length, 4096);
  // The setup header is copied, then the loader's fields set.
  assertEquals(dv.getUint16(HDR.boot_flag, true), 0xaa55);
  assertEquals(dv.getUint32(HDR.header, true), 0x53726448);
  assertEquals(zp[HDR.setup_sects], file[HDR.setup_sects]);
  assertEquals(dv.getUint32(HDR.init_size, true), bz.header.initSize);
  assertEquals(zp[HDR.type_of_loader], 0xff);
  assertEquals(zp[HDR.loadflags] & 0x81, 0x81);
  assertEquals(dv.getUint32(HDR.cmd_line_ptr, true), plan.boot.layout.cmdline_addr);
  assertEquals(dv.getUint32(HDR.ramdisk_image, true), p.initrd!.addr);
  assertEquals(dv.getUint32(HDR.ramdisk_size, true), 5 * MiB);
  assertEquals(Number(dv.getBigUint64(ZP.acpi_rsdp_addr, true)), 0xe0000);
  assertEquals(zp[ZP.sentinel], 0);
  // Nothing beyond the header was copied from the image.
  assert(zp.subarray(bz.header.headerEnd, ZP.e820_table).every((b) => b === 0));
  assertEquals(zp[ZP.e820_entries], plan.e820.length);
  const types = { ram: 1, reserved: 2, acpi: 3, nvs: 4 };
  plan.e820.forEach((e, i) => {
    const o = ZP.e820_table + 20 * i;
    assertEquals(Number(dv.getBigUint64(o, true)), e.addr);
    assertEquals(Number(dv.getBigUint64(o + 8, true)), e.size);
    assertEquals(dv.getUint32(o + 16, true), types[e.type]);
  });
});

Deno.test("linux: the command line is NUL-terminated and checked against the kernel's limit", () => {
  const plan = samplePlan();
  plan.boot.cmdline = "console=ttyS0 earlyprintk=serial";
  const bz = parseBzImage(fakeBzImage({ cmdlineSize: 20 }), "k");
  assertThrows(() => encodeCmdline(plan, bz.header), isCode("E1006"));
  const ok = parseBzImage(fakeBzImage(), "k");
  const c = encodeCmdline(plan, ok.header);
  assertEquals(c.length, plan.boot.cmdline.length + 1);
  assertEquals(c[c.length - 1], 0);
});
