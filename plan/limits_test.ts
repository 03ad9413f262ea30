import { equal } from "node:assert/strict";
import schema from "./schema.json" with { type: "json" };
import { KVM_USER_MEM_SLOTS, MAX_CPUS } from "./limits.ts";

Deno.test("plan/schema.json states the limits of plan/limits.ts", () => {
  equal(schema.properties.cpus.properties.count.maximum, MAX_CPUS);
  equal(schema.properties.memslots.maxItems, KVM_USER_MEM_SLOTS);
});
