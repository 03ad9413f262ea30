/**
 * The in-flight test's check can fail: checkWriterImage (tests/soak/soak.ts) sees a
 * reported write missing from the image, a write cut short, and a sector nobody wrote
 * (no KVM needed).
 */
import assert from "node:assert/strict";
import { checkWriterImage, writerSector } from "./soak.ts";
import { diskImageBytes } from "../../examples/guests/build.ts";

function image(writes: [sector: number, seq: number][]): Uint8Array {
  const img = diskImageBytes();
  for (const [sector, seq] of writes) img.set(writerSector(seq, sector), sector * 512);
  return img;
}

const OUT = "blk-writer: writing\nw 2 1\nw 3 2\nw 2 3\nw 4 ";

Deno.test("writer check: every reported write present passes (a later unreported one too)", () => {
  const r = checkWriterImage(OUT, image([[2, 3], [3, 2]]), diskImageBytes());
  assert.deepEqual(r, { reported: 3, lost: [], stray: [] });
  // Write 4 to sector 4 completed but its line was cut off by the close: not lost, not stray.
  const later = checkWriterImage(OUT, image([[2, 3], [3, 2], [4, 4]]), diskImageBytes());
  assert.deepEqual(later, { reported: 3, lost: [], stray: [] });
});

Deno.test("writer check: a lost, an older, a torn and a stray write are each caught", () => {
  const orig = diskImageBytes();
  assert.deepEqual(checkWriterImage(OUT, image([[2, 3]]), orig).lost, [
    "sector 3: reported write 2, image holds 67372036",
  ]);
  assert.deepEqual(checkWriterImage(OUT, image([[2, 1], [3, 2]]), orig).lost, [
    "sector 2: reported write 3, image holds 1",
  ]);
  const torn = image([[2, 3], [3, 2]]);
  torn.set(orig.subarray(3 * 512 + 256, 4 * 512), 3 * 512 + 256);
  assert.equal(checkWriterImage(OUT, torn, orig).lost.length, 1);
  const stray = image([[2, 3], [3, 2]]);
  stray[9 * 512] ^= 0xff;
  assert.deepEqual(checkWriterImage(OUT, stray, orig).stray, ["sector 9"]);
});
