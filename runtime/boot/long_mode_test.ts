import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  CR0_PG,
  GDT_CODE64,
  GDT_DATA,
  identityPageTables,
  longModeControlRegs,
  longModeGdt,
  PAGE_TABLE_BYTES,
} from "./long_mode.ts";

/** Walks the tables like the MMU does (4-level, 2 MiB leaves) for a virtual address. */
function translate(tables: Uint8Array, at: number, va: number): number {
  const dv = new DataView(tables.buffer);
  const entry = (tableAddr: number, index: number) =>
    dv.getBigUint64(tableAddr - at + index * 8, true);
  const v = BigInt(va);
  const pml4e = entry(at, Number((v >> 39n) & 511n));
  if (!(pml4e & 1n)) throw new Error("PML4E not present");
  const pdpte = entry(Number(pml4e & ~0xfffn), Number((v >> 30n) & 511n));
  if (!(pdpte & 1n)) throw new Error("PDPTE not present");
  const pde = entry(Number(pdpte & ~0xfffn), Number((v >> 21n) & 511n));
  if (!(pde & 1n) || !(pde & 0x80n)) throw new Error("PDE not a present 2 MiB page");
  return Number((pde & ~0x1f_ffffn) | (v & 0x1f_ffffn));
}

Deno.test("long mode: page tables identity-map the first 4 GiB with 2 MiB pages", () => {
  const at = 0x9000;
  const t = identityPageTables(at);
  assertEquals(t.length, PAGE_TABLE_BYTES);
  for (const va of [0, 0x1000, 0x100_0000 + 0x200, 0x7fff_ffff, 0xc000_0000, 0xffff_ffff]) {
    assertEquals(translate(t, at, va), va);
  }
  assertThrows(() => translate(t, at, 2 ** 32)); // nothing beyond 4 GiB
  assertThrows(() => identityPageTables(0x9010));
});

Deno.test("long mode: GDT has flat 64-bit code at 0x10 and flat data at 0x18", () => {
  const g = new DataView(longModeGdt().buffer);
  assertEquals(g.getBigUint64(0, true), 0n);
  assertEquals(g.getBigUint64(8, true), 0n);
  assertEquals(g.getBigUint64(0x10, true), GDT_CODE64);
  assertEquals(g.getBigUint64(0x18, true), GDT_DATA);
  // code: present, DPL 0, execute/read, L=1, D=0, G=1; data: present, read/write, D/B=1, G=1
  assertEquals((GDT_CODE64 >> 40n) & 0xffn, 0x9bn);
  assertEquals((GDT_CODE64 >> 52n) & 0xfn, 0xan);
  assertEquals((GDT_DATA >> 40n) & 0xffn, 0x93n);
  assertEquals((GDT_DATA >> 52n) & 0xfn, 0xcn);
});

Deno.test("long mode: control registers stay unsigned 64-bit values with PG set", () => {
  const cr = longModeControlRegs({ cr0: 0x6000_0010n, cr3: 0n, cr4: 0n, efer: 0n }, 0x9000);
  assertEquals(cr.cr0, 0x8000_0031n); // CD|NW cleared, PE|ET|NE|PG set; not sign-extended
  assertEquals(cr.cr0 & CR0_PG, CR0_PG);
  assertEquals(cr.cr3, 0x9000n);
  assertEquals(cr.cr4, 0x20n);
  assertEquals(cr.efer, 0x500n);
});
