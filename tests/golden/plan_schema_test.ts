import { planSchemaErrors } from "../../plan/validate.ts";
import { compile } from "../../lang/mod.ts";
import { createMemoryHost } from "../../lang/host_memory.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const HELLO = await Deno.readTextFile(new URL("../../examples/hello.vmdesc", import.meta.url));
const plan = compile(HELLO, { file: "hello.vmdesc", host: createMemoryHost() }).plans.get("hello")!;

Deno.test("plan schema: an optional $schema key is accepted, nothing else unknown", () => {
  assert(plan !== undefined, "hello lowers");
  assert(planSchemaErrors(plan).length === 0, "the lowered Plan follows the schema");
  const withSchema = { $schema: "../plan/schema.json", ...plan };
  const errors = planSchemaErrors(withSchema);
  assert(errors.length === 0, `a $schema key is accepted: ${errors.join("; ")}`);
  assert(planSchemaErrors({ ...plan, $schema: 1 }).length > 0, "$schema must be a string");
  assert(planSchemaErrors({ ...plan, $shema: "x" }).length > 0, "other unknown keys are not");
});
