import { deepStrictEqual as equal } from "node:assert/strict";
import { mmioPiece } from "./run_loop.ts";

/** The pieces a `len`-byte MMIO access is cut into. */
function pieces(len: number): number[] {
  const out: number[] = [];
  for (let o = 0, step = 0; o < Math.min(len, 8); o += step) out.push(step = mmioPiece(len, o));
  return out;
}

Deno.test("run loop: an MMIO access reaches devices as 1-, 2- and 4-byte pieces, low first", () => {
  equal(pieces(1), [1]);
  equal(pieces(2), [2]);
  equal(pieces(4), [4]);
  equal(pieces(8), [4, 4]);
  // The halves KVM makes of a page-crossing access (the guest fuzzer met 3-byte ones).
  equal(pieces(3), [2, 1]);
  equal(pieces(5), [4, 1]);
  equal(pieces(6), [4, 2]);
  equal(pieces(7), [4, 2, 1]);
  equal(pieces(99), [4, 4]);
});
