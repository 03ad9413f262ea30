/** The ELF reader: ELF32 and ELF64 PVH images, notes, truncation, non-ELF input. */
import { equal, ok, throws } from "node:assert/strict";
import { parseElf, PT_LOAD } from "./elf.ts";
import { RuntimeError } from "../errors.ts";
import { buildGuests } from "../../examples/guests/build.ts";

const code = (c: string) => (e: unknown) => e instanceof RuntimeError && e.code === c;

Deno.test("elf: the hello guest (ELF32) and its ELF64 twin give the same PVH entry and segments", async () => {
  const built = await buildGuests(["hello"]);
  const path = built.get("hello")!;
  const e32 = parseElf(await Deno.readFile(path), path);
  equal(e32.class, 32);
  ok(e32.pvhEntry !== null && e32.pvhEntry >= 0x10_0000);
  const tmp = await Deno.makeTempFile({ suffix: ".elf" });
  try {
    // objcopy re-wraps the same image as ELF64, like a vmlinux (64-bit container, PVH note).
    const o = await new Deno.Command("objcopy", { args: ["-O", "elf64-x86-64", path, tmp] })
      .output();
    equal(o.code, 0);
    const e64 = parseElf(await Deno.readFile(tmp), tmp);
    equal(e64.class, 64);
    equal(e64.pvhEntry, e32.pvhEntry);
    const loads = (e: typeof e32) =>
      e.segments.filter((s) => s.type === PT_LOAD).map((s) => [s.paddr, s.memsz]);
    equal(JSON.stringify(loads(e64)), JSON.stringify(loads(e32)));
  } finally {
    await Deno.remove(tmp);
  }
});

Deno.test("elf: a 64-bit Xen note with an 8-byte descriptor is read whole", () => {
  // Minimal ELF64: header, one PT_NOTE program header, one note "Xen" type 18 desc u64.
  const b = new Uint8Array(64 + 56 + 24);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(18, 62, true); // x86-64
  dv.setBigUint64(32, 64n, true); // phoff
  dv.setUint16(54, 56, true);
  dv.setUint16(56, 1, true);
  dv.setUint32(64, 4, true); // PT_NOTE
  dv.setBigUint64(64 + 8, 120n, true); // offset
  dv.setBigUint64(64 + 32, 24n, true); // filesz
  dv.setUint32(120, 4, true); // namesz
  dv.setUint32(124, 8, true); // descsz
  dv.setUint32(128, 18, true); // type
  b.set([0x58, 0x65, 0x6e, 0], 132); // "Xen\0"
  dv.setBigUint64(136, 0x1234_5678n, true);
  const e = parseElf(b, "x");
  equal(e.pvhEntry, 0x1234_5678);
});

Deno.test("elf: not an ELF → E1012, cut short → E1011", async () => {
  throws(() => parseElf(new TextEncoder().encode("#!/bin/sh\necho hi\n"), "x"), code("E1012"));
  const built = await buildGuests(["hello"]);
  const bytes = await Deno.readFile(built.get("hello")!);
  throws(() => parseElf(bytes.subarray(0, 40), "x"), code("E1011"));
  throws(() => parseElf(bytes.subarray(0, 300), "x"), code("E1011"));
});
