/**
 * plan/schema.json and plan/types.ts describe the same Plan: this test proves it, with the
 * TypeScript checker as the judge.
 *
 * Why two hand-written files and a proof rather than one generated from the other: each
 * holds what the other cannot hold well. The schema carries the bounds a hand-written or
 * foreign Plan is validated against (maxima such as MAX_CPUS, 4 KiB minima, BDF patterns,
 * `additionalProperties: false`), which TypeScript types cannot express; the types carry
 * the names the code uses (`HolePlan`, `BarKind`, ...) and the prose that explains each
 * field in the editor, which a generator would have to take from JSON description strings.
 * Generating either side would lose one of them (or move the prose into JSON), so both
 * stay written by hand, and the shapes — every property, whether it is required or may be
 * null, every union of literals — cannot drift apart: this test turns the schema into
 * TypeScript declarations (json-schema-to-typescript, the maintained converter) and asks
 * `deno check` whether `Plan` and the schema's type are assignable to each other. A field
 * added, removed, renamed, made optional or nullable, or given another literal on one side
 * only makes the check fail and names the property.
 */
import { compile } from "json-schema-to-typescript";
import schema from "./schema.json" with { type: "json" };

const TYPES_URL = new URL("./types.ts", import.meta.url);

/** The TypeScript of the schema, plus assignments both ways to the hand-written Plan. */
async function agreementModule(): Promise<string> {
  // A deep copy: the converter annotates the objects it is given.
  const input = JSON.parse(JSON.stringify(schema));
  const declarations = await compile(input, "SchemaPlan", {
    bannerComment: "",
    format: false,
    additionalProperties: false,
    // A bounded array (`maxItems`) stays an array: TypeScript has no length bounds.
    maxItems: -1,
    // The root is named after the schema's title; name it so the assertions can use it.
    customName: (s, name) => (s.$id === schema.$id ? "SchemaPlan" : name),
  });
  return `${declarations}
import type { Plan } from ${JSON.stringify(TYPES_URL.href)};
declare const fromSchema: SchemaPlan;
declare const fromTypes: Plan;
// Each direction catches what the other misses: a property only in Plan fails the first,
// one only in the schema (or optional on one side only) the second.
export const typesAcceptSchema: Plan = fromSchema;
export const schemaAcceptsTypes: SchemaPlan = fromTypes;
`;
}

async function denoCheck(source: string): Promise<{ ok: boolean; output: string }> {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-plan-schema-" });
  try {
    const file = `${dir}/agreement.ts`;
    await Deno.writeTextFile(file, source);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--no-config", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { ok: r.success, output: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("plan/types.ts and plan/schema.json describe the same Plan", async () => {
  const { ok, output } = await denoCheck(await agreementModule());
  if (!ok) {
    throw new Error(
      `plan/types.ts and plan/schema.json disagree (fix the side that is wrong):\n${output}`,
    );
  }
});

Deno.test("the agreement check notices a drift (a Plan field the schema lacks)", async () => {
  // The same check against a Plan with one extra field must fail, or the test above
  // could pass without comparing anything.
  const source = (await agreementModule()).replace(
    `import type { Plan } from ${JSON.stringify(TYPES_URL.href)};`,
    `import type { Plan as Real } from ${
      JSON.stringify(TYPES_URL.href)
    };\ntype Plan = Real & { drift: string };`,
  );
  const { ok, output } = await denoCheck(source);
  if (ok || !output.includes("drift")) {
    throw new Error(`a drifted Plan type passed the agreement check:\n${output}`);
  }
});
