import assert from "node:assert/strict";
import { createDebugExit, debugExitStatus } from "./mod.ts";
import { devicePlan, minimalPlan, recordingContext } from "../testing.ts";

Deno.test("debug_exit: any-width write requests a stop with the masked value", () => {
  const ctx = recordingContext();
  const dev = createDebugExit(
    devicePlan({ id: "dbg", kind: "debug_exit", ports: [{ base: 0xf4, size: 1 }] }),
    ctx,
    minimalPlan(),
  );
  dev.write("pio", 0xf4, 1, 0x1ff);
  dev.write("pio", 0xf4, 4, 0x12345678);
  assert.deepEqual(ctx.stops, [
    { kind: "debug_exit", value: 0xff, success: false },
    { kind: "debug_exit", value: 0x12345678, success: false },
  ]);
  assert.equal(dev.read("pio", 0xf4, 1), 0);
  assert.deepEqual(dev.ports, [{ base: 0xf4, size: 1 }]);
});

Deno.test("debug_exit: the declared success value is flagged, other values are not", () => {
  const ctx = recordingContext();
  const dev = createDebugExit(
    devicePlan({
      id: "dbg",
      kind: "debug_exit",
      ports: [{ base: 0xf4, size: 1 }],
      props: { size: 1, success: 42 },
    }),
    ctx,
    minimalPlan(),
  );
  dev.write("pio", 0xf4, 1, 41);
  dev.write("pio", 0xf4, 1, 42);
  assert.deepEqual(ctx.stops, [
    { kind: "debug_exit", value: 41, success: false },
    { kind: "debug_exit", value: 42, success: true },
  ]);
});

Deno.test("debug_exit: size property widens the claimed range; QEMU's status formula", () => {
  const dev = createDebugExit(
    devicePlan({
      id: "d",
      kind: "debug_exit",
      ports: [{ base: 0x501, size: 1 }],
      props: { size: 2 },
    }),
    recordingContext(),
    minimalPlan(),
  );
  assert.deepEqual(dev.ports, [{ base: 0x501, size: 2 }]);
  assert.equal(debugExitStatus(0), 1);
  assert.equal(debugExitStatus(0x10), 33);
  assert.equal(debugExitStatus(2), 5);
});
