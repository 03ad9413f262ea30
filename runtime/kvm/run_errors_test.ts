import assert from "node:assert/strict";
import { kvmRunFailure } from "./run_errors.ts";

Deno.test("KVM_RUN failures: what each errno KVM returns means; anything else is flagged", () => {
  assert.match(kvmRunFailure("EFAULT"), /memory KVM could not map/);
  assert.match(kvmRunFailure("ENOMEM"), /no memory/);
  assert.match(kvmRunFailure("EIO"), /another process|other than/);
  assert.match(kvmRunFailure("ENOENT"), /not an error KVM_RUN returns/);
});
