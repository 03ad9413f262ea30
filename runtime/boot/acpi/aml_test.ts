import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import * as aml from "./aml.ts";

Deno.test("aml: PkgLength counts its own bytes and switches to multi-byte at 63", () => {
  assertEquals([...aml.pkgLength(0)], [0x01]);
  assertEquals([...aml.pkgLength(62)], [0x3f]);
  // 63 bytes of content + 2 bytes of PkgLength = 65 = 0x41: lead 0x41, next 0x04.
  assertEquals([...aml.pkgLength(63)], [0x41, 0x04]);
  // 4093 + 2 = 4095 = 0xFFF still fits in two bytes; 4094 + 3 = 0x1001 needs three.
  assertEquals([...aml.pkgLength(4093)], [0x4f, 0xff]);
  assertEquals([...aml.pkgLength(4094)], [0x81, 0x00, 0x01]);
});

Deno.test("aml: EISA ids compress like iasl's EISAID()", () => {
  assertEquals(aml.eisaIdValue("PNP0A03"), 0x030ad041);
  assertEquals(aml.eisaIdValue("PNP0A08"), 0x080ad041);
  assertEquals(aml.eisaIdValue("PNP0501"), 0x0105d041);
  assertThrows(() => aml.eisaIdValue("pnp0a03"));
});

Deno.test("aml: name strings, integers and strings", () => {
  assertEquals([...aml.nameString("\\_SB_")], [0x5c, 0x5f, 0x53, 0x42, 0x5f]);
  assertEquals([...aml.nameString("_SB.PCI0")], [
    0x2e,
    0x5f,
    0x53,
    0x42,
    0x5f,
    0x50,
    0x43,
    0x49,
    0x30,
  ]);
  assertEquals([...aml.nameString("^COM")], [0x5e, 0x43, 0x4f, 0x4d, 0x5f]);
  assertEquals(aml.nameString("\\A.B.C")[1], 0x2f);
  assertEquals([...aml.integer(0)], [0x00]);
  assertEquals([...aml.integer(1)], [0x01]);
  assertEquals([...aml.integer(0x0b)], [0x0a, 0x0b]);
  assertEquals([...aml.integer(0x3f8)], [0x0b, 0xf8, 0x03]);
  assertEquals([...aml.integer(0x1_0000_0000)], [0x0e, 0, 0, 0, 0, 1, 0, 0, 0]);
  assertEquals([...aml.string("A")], [0x0d, 0x41, 0x00]);
  assertThrows(() => aml.nameString("toolong"));
});

Deno.test("aml: resource descriptors have the spec's lengths", () => {
  assertEquals(aml.wordBusNumber({ min: 0, max: 255 }).length, 16);
  assertEquals(aml.wordIo({ min: 0xc000, max: 0xffff }).length, 16);
  assertEquals(aml.dwordMemory({ min: 0xc000_0000, max: 0xdfff_ffff }).length, 26);
  assertEquals(aml.qwordMemory({ min: 2 ** 33, max: 2 ** 34 - 1 }).length, 46);
  assertEquals([...aml.io(0x3f8, 8)], [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08]);
  assertEquals([...aml.irqNoFlags([4])], [0x22, 0x10, 0x00]);
  assertEquals(aml.memory32Fixed(0xe000_0000, 0x1000_0000).length, 12);
  // A template ends with the End Tag inside a Buffer whose size is its first term.
  const t = aml.resourceTemplate([aml.io(0x60, 1)]);
  assertEquals([...t.slice(-2)], [0x79, 0x00]);
  assertEquals(t[0], 0x11);
});
