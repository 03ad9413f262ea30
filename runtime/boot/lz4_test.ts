import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { decompressLz4Legacy, isLz4Legacy, Lz4Error } from "./lz4.ts";
import { skipReason } from "../../tests/skip.ts";

const MAGIC = [0x02, 0x21, 0x4c, 0x18];
const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];

function frame(blocks: number[][], trailer: number | null): Uint8Array {
  const out = [...MAGIC];
  for (const b of blocks) out.push(...le32(b.length), ...b);
  if (trailer !== null) out.push(...le32(trailer));
  return Uint8Array.from(out);
}

// "abc", then a 9-byte match 3 back (overlapping), then a literal-only last sequence "x".
const BLOCK = [0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x78];

Deno.test("lz4: a hand-made legacy frame with an overlapping match", () => {
  const out = decompressLz4Legacy(frame([BLOCK], 13));
  assertEquals(new TextDecoder().decode(out), "abcabcabcabcx");
  assert(isLz4Legacy(frame([BLOCK], null)));
  // Without the kernel's size trailer, and across two frames (a second magic).
  assertEquals(decompressLz4Legacy(frame([BLOCK], null)).length, 13);
  const two = Uint8Array.from([...frame([BLOCK], null), ...MAGIC, ...le32(BLOCK.length), ...BLOCK]);
  assertEquals(new TextDecoder().decode(decompressLz4Legacy(two)), "abcabcabcabcx".repeat(2));
});

Deno.test("lz4: long literal and match lengths (255-continuation bytes)", () => {
  // 15+255+10 = 280 literals of 'a'..., then a match of 4+15+255+1 = 275 at offset 1.
  const lits = Array.from({ length: 280 }, (_, i) => 0x41 + (i % 26));
  const block = [0xff, 255, 10, ...lits, 0x01, 0x00, 255, 1, 0x00];
  const out = decompressLz4Legacy(frame([block], 280 + 275));
  assertEquals(out.length, 555);
  assertEquals(out[279], lits[279]);
  assert(out.subarray(280).every((c) => c === lits[279]));
});

Deno.test("lz4: corrupt input is an Lz4Error, not a crash", () => {
  assertThrows(() => decompressLz4Legacy(Uint8Array.of(1, 2, 3, 4)), Lz4Error);
  // offset beyond what has been written
  assertThrows(() => decompressLz4Legacy(frame([[0x10, 0x61, 0x09, 0x00, 0x00]], null)), Lz4Error);
  // block size past the end of the input
  const cut = frame([BLOCK], null).subarray(0, 10);
  assertThrows(() => decompressLz4Legacy(cut), Lz4Error);
  // a wrong size trailer
  assertThrows(() => decompressLz4Legacy(frame([BLOCK], 14)), Lz4Error);
});

const skipLz4 = skipReason("lz4 round trip", { tools: ["lz4"] });

Deno.test({
  name: "lz4: round trip through the real `lz4 -l` (legacy format, several blocks)",
  ignore: skipLz4 !== null,
  async fn() {
    // 9 MiB of compressible but irregular data: more than one 8 MiB legacy block.
    const data = new Uint8Array(9 * 2 ** 20);
    let x = 12345;
    for (let i = 0; i < data.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      data[i] = (x >>> 24) % 7 === 0 ? x & 0xff : (i >> 6) & 0xff;
    }
    const p = new Deno.Command("lz4", {
      args: ["-l", "-9", "-c", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // Read while writing: lz4 blocks on a full stdout pipe.
    const result = p.output();
    const w = p.stdin.getWriter();
    await w.write(data);
    await w.close();
    const { stdout, success } = await result;
    assert(success);
    const out = decompressLz4Legacy(stdout);
    assertEquals(out.length, data.length);
    assert(out.every((v, i) => v === data[i]));
  },
});
