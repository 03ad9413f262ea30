import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { RuntimeError } from "../errors.ts";
import { describeFile, extractVmlinux, parseBzImage } from "./bzimage.ts";
import { fakeBzImage, lz4Stored, tinyPvhElf } from "./bzimage_testing.ts";
import { parseElf } from "./elf.ts";

function codeOf(f: () => unknown): RuntimeError {
  try {
    f();
  } catch (e) {
    assert(e instanceof RuntimeError, `expected a RuntimeError, got ${e}`);
    assert(e.hint && e.hint.length > 0, "every error has a hint");
    return e;
  }
  throw new Error("expected an error");
}

Deno.test("bzimage: reads the setup header of a well-formed image", () => {
  const bz = parseBzImage(fakeBzImage({ setupSects: 0 }), "k");
  assertEquals(bz.header.setupSects, 4); // 0 means 4
  assertEquals(bz.kernelOffset, 5 * 512);
  assertEquals(bz.header.version, 0x020f);
  assertEquals(bz.header.prefAddress, 0x100_0000);
  assertEquals(bz.header.headerEnd, 0x26c);
  assertEquals(bz.kernel.length, bz.header.syssize);
  assertEquals(bz.kernel[0x200], 0xf4);
});

Deno.test("bzimage: an ELF is E1013 with a hint to use boot pvh", () => {
  const e = codeOf(() => parseBzImage(tinyPvhElf(), "vmlinux"));
  assertEquals(e.code, "E1013");
  assert(/64-bit ELF/.test(e.message), e.message);
  assert(/boot pvh/.test(e.hint!), e.hint!);
});

Deno.test("bzimage: other non-kernels are E1013 and say what they are", () => {
  assertEquals(codeOf(() => parseBzImage(new TextEncoder().encode("hello\n"), "t")).code, "E1013");
  const gz = Uint8Array.of(0x1f, 0x8b, 8, 0, ...new Array(600).fill(0));
  const e = codeOf(() => parseBzImage(gz, "k.gz"));
  assert(/gzip/.test(e.message));
  assertEquals(
    describeFile(Uint8Array.of(0x21, 0x3c, 0x61, 0x72, 0x63, 0x68, 0x3e)),
    "an ar archive (a .deb package?)",
  );
});

Deno.test("bzimage: protocol older than 2.12, or no 64-bit entry, is E1014", () => {
  const old = codeOf(() => parseBzImage(fakeBzImage({ version: 0x020a }), "old"));
  assertEquals(old.code, "E1014");
  assert(/2\.10/.test(old.message), old.message);
  const k32 = codeOf(() => parseBzImage(fakeBzImage({ xloadflags: 0 }), "k32"));
  assertEquals(k32.code, "E1014");
});

Deno.test("bzimage: truncated images are E1011", () => {
  const full = fakeBzImage();
  assertEquals(codeOf(() => parseBzImage(full.subarray(0, full.length - 16), "cut")).code, "E1011");
  assertEquals(codeOf(() => parseBzImage(full.subarray(0, 0x210), "cut")).code, "E1011");
  const mz = Uint8Array.of(0x4d, 0x5a, 0, 0);
  assertEquals(codeOf(() => parseBzImage(mz, "cut")).code, "E1011");
});

Deno.test("bzimage: extracts an lz4 payload into the ELF with its PVH note", async () => {
  const elf = tinyPvhElf();
  const bz = parseBzImage(fakeBzImage({ payload: lz4Stored(elf) }), "k");
  const out = await extractVmlinux(bz, "k");
  assertEquals([...out], [...elf]);
  assertEquals(parseElf(out, "k").pvhEntry, 0x100_0000);
});

Deno.test("bzimage: extracts a gzip payload too", async () => {
  const elf = tinyPvhElf();
  const gz = new Uint8Array(
    await new Response(new Blob([elf.slice()]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  const out = await extractVmlinux(parseBzImage(fakeBzImage({ payload: gz }), "k"), "k");
  assertEquals([...out], [...elf]);
});

Deno.test("bzimage: unsupported or corrupt payloads are coded errors", async () => {
  const xz = Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3);
  await assertRejects(
    () => extractVmlinux(parseBzImage(fakeBzImage({ payload: xz }), "k"), "k"),
    (e: unknown) => e instanceof RuntimeError && e.code === "E1012" && /xz/.test(e.message),
  );
  const broken = lz4Stored(tinyPvhElf()).subarray(0, 100);
  await assertRejects(
    () => extractVmlinux(parseBzImage(fakeBzImage({ payload: broken }), "k"), "k"),
    (e: unknown) => e instanceof RuntimeError && e.code === "E1011",
  );
});
