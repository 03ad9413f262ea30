import assert from "node:assert/strict";
import { kvmTest, runGuest } from "./boot.ts";

kvmTest(
  "guest hello: prints its line and exits through debug_exit with 42 (status 85)",
  async () => {
    const { result, output } = await runGuest("hello", "hello.vmdesc");
    assert.equal(output, "Hello from vmdesc guest\n");
    assert.equal(result.reason, "debug_exit");
    assert.equal(result.debugValue, 42);
    assert.equal(result.exitStatus, (42 << 1) | 1);
  },
);
