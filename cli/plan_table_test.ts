import { addr, hex, memRange, portRange, size, table } from "./plan_table.ts";

function eq(actual: unknown, expected: unknown) {
  if (actual !== expected) {
    throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

Deno.test("hex groups digits by four, addresses pad to 8 digits", () => {
  eq(hex(0x3f8), "0x3F8");
  eq(hex(0xc000_0000), "0xC000_0000");
  eq(addr(0), "0x0000_0000");
  eq(addr(2 ** 32), "0x1_0000_0000");
  eq(addr(2 ** 52 - 1), "0xF_FFFF_FFFF_FFFF");
});

Deno.test("sizes read in the largest whole unit", () => {
  eq(size(0), "0 B");
  eq(size(32), "32 B");
  eq(size(4096), "4 KiB");
  eq(size(128 * 2 ** 20), "128 MiB");
  eq(size(3 * 2 ** 30), "3 GiB");
  eq(size(2 ** 20 + 2 ** 12), "1028 KiB");
  eq(size(1.5 * 2 ** 30), "1536 MiB");
  eq(size(2 ** 30 + 1), "~1 GiB");
  eq(size(2.5 * 2 ** 40 + 2 ** 30), "2561 GiB");
  eq(size(10000.5 * 2 ** 30), "~9.77 TiB");
});

Deno.test("ranges print with an inclusive end", () => {
  eq(memRange(0xc000_0000, 2 ** 30), "0xC000_0000-0xFFFF_FFFF");
  eq(portRange({ base: 0x3f8, size: 8 }), "0x3F8-0x3FF");
  eq(portRange({ base: 0xf4, size: 1 }), "0xF4");
});

Deno.test("tables align columns and trim trailing blanks", () => {
  eq(table(["a", "bb"], [["xxx", ""], ["y", "z"]]), "  a    bb\n  xxx\n  y    z\n");
});
