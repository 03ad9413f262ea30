import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { samplePlan } from "./acpi/testing.ts";
import { placeHigh, usableRam } from "./placement.ts";

const MiB = 2 ** 20;

Deno.test("placement: usable RAM comes from the e820 map's ram entries only", () => {
  const ram = usableRam(samplePlan().e820);
  assertEquals(ram.map((r) => r.base), [0, 0x100000, 4 * 2 ** 30]);
});

Deno.test("placement: as high as fits below the limit, page aligned, around avoided ranges", () => {
  const plan = samplePlan();
  plan.e820 = [{ addr: 0, size: 64 * MiB, type: "ram" }];
  // Top of RAM, page aligned down.
  assertEquals(placeHigh(plan, 10 * MiB + 1, 2 ** 32, []), 54 * MiB - 4096);
  // An avoided range at the top pushes it below.
  assertEquals(placeHigh(plan, 10 * MiB, 2 ** 32, [{ base: 50 * MiB, end: 64 * MiB }]), 40 * MiB);
  // The limit counts, and nothing goes below 1 MiB.
  assertEquals(placeHigh(plan, 4 * MiB, 8 * MiB, []), 4 * MiB);
  assertEquals(placeHigh(plan, 8 * MiB, 8 * MiB, []), -1);
  // Around an avoided range in the middle: the piece above is too small, the one below fits.
  assertEquals(placeHigh(plan, 5 * MiB, 2 ** 32, [{ base: 10 * MiB, end: 60 * MiB }]), 5 * MiB);
  assertEquals(placeHigh(plan, 3 * MiB, 2 ** 32, [{ base: 10 * MiB, end: 60 * MiB }]), 61 * MiB);
});
