import assert from "node:assert/strict";
import { createI8042 } from "./mod.ts";
import { devicePlan, minimalPlan, recordingContext } from "../testing.ts";

function setup() {
  const ctx = recordingContext();
  const dev = createI8042(
    devicePlan({
      id: "kbc",
      kind: "i8042",
      ports: [{ base: 0x60, size: 1 }, { base: 0x64, size: 1 }],
    }),
    ctx,
    minimalPlan(),
  );
  return { ctx, dev, status: () => dev.read("pio", 0x64, 1), data: () => dev.read("pio", 0x60, 1) };
}

Deno.test("i8042: self-test, interface test and command byte round trip", () => {
  const { dev, status, data } = setup();
  assert.equal(status() & 1, 0, "nothing to read");
  dev.write("pio", 0x64, 1, 0xaa);
  assert.equal(status() & 1, 1);
  assert.equal(data(), 0x55);
  assert.equal(status() & 1, 0);
  dev.write("pio", 0x64, 1, 0xab);
  assert.equal(data(), 0x00);
  dev.write("pio", 0x64, 1, 0x60);
  dev.write("pio", 0x60, 1, 0x47);
  dev.write("pio", 0x64, 1, 0x20);
  assert.equal(data(), 0x47);
});

Deno.test("i8042: 0xFE on the command port requests a reset; other pulses do not", () => {
  const { ctx, dev } = setup();
  dev.write("pio", 0x64, 1, 0xff); // pulse nothing
  assert.equal(ctx.stops.length, 0);
  dev.write("pio", 0x64, 1, 0xfe);
  assert.deepEqual(ctx.stops, [{ kind: "reset", source: "kbc" }]);
  dev.write("pio", 0x64, 1, 0xd1);
  dev.write("pio", 0x60, 1, 0x00); // output port with reset bit low
  assert.equal(ctx.stops.length, 2);
  assert.equal(dev.stats().resets_requested, 2);
});

Deno.test("i8042: one 5-port range is accepted as well", () => {
  const dev = createI8042(
    devicePlan({ id: "k", kind: "i8042", ports: [{ base: 0x60, size: 5 }] }),
    recordingContext(),
    minimalPlan(),
  );
  dev.write("pio", 0x64, 1, 0xaa);
  assert.equal(dev.read("pio", 0x60, 1), 0x55);
  assert.deepEqual(dev.ports, [{ base: 0x60, size: 1 }, { base: 0x64, size: 1 }], "not 0x61..0x63");
});

Deno.test("i8042: Linux's AUX check ends at once: no AUX port, no keylock", () => {
  const { dev, status, data } = setup();
  assert.equal(status() & 0x10, 0x10, "keyboard not inhibited");
  // i8042_check_aux: AUX loopback of 0x5a, answered on the keyboard line (no AUX-data bit)
  dev.write("pio", 0x64, 1, 0xd3);
  dev.write("pio", 0x60, 1, 0x5a);
  assert.equal(status() & 0x21, 0x01, "a byte to read, not from AUX");
  assert.equal(data(), 0x5a);
  // ... then the AUX interface test: 0x02, clock line stuck (nothing attached)
  dev.write("pio", 0x64, 1, 0xa9);
  assert.equal(status() & 1, 1);
  assert.equal(data(), 0x02);
  // keyboard output buffer write comes back as keyboard data
  dev.write("pio", 0x64, 1, 0xd2);
  dev.write("pio", 0x60, 1, 0x41);
  assert.equal(data(), 0x41);
  assert.equal(status() & 1, 0);
});
