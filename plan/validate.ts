/**
 * Checks a value against the Plan's JSON Schema (`plan/schema.json`), for Plans that
 * come from outside the compiler: `vmdesc boot --plan FILE`, and the tests that hold every
 * lowered Plan to the schema. ajv is loaded with this module, so only those paths pay for it.
 */
import Ajv from "ajv";
import schema from "./schema.json" with { type: "json" };
import type { Plan } from "./types.ts";

// ajv is CommonJS: under Deno its class is the default export's `default`.
// deno-lint-ignore no-explicit-any
const AjvCtor = ((Ajv as any).default ?? Ajv) as new (opts: object) => {
  compile(s: unknown): ((v: unknown) => boolean) & {
    errors?: { instancePath: string; message?: string }[] | null;
  };
};
const check = new AjvCtor({ allErrors: true, strict: true, allowUnionTypes: true }).compile(
  schema,
);

/** Every schema violation as "PATH MESSAGE" ("/memslots/0/size must be >= 4096"); [] when valid. */
export function planSchemaErrors(value: unknown): string[] {
  if (check(value)) return [];
  return (check.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`);
}

/** Narrows to Plan when the value follows the schema. */
export function isPlan(value: unknown): value is Plan {
  return planSchemaErrors(value).length === 0;
}
