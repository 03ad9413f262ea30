import { renderRecipeModule } from "./gen.ts";

Deno.test("vmdesc_recipe.ts is generated from the current vmdesc.ohm", () => {
  const source = Deno.readTextFileSync(new URL("./vmdesc.ohm", import.meta.url));
  const current = Deno.readTextFileSync(new URL("./vmdesc_recipe.ts", import.meta.url));
  if (renderRecipeModule(source) !== current) {
    throw new Error("lang/syntax/vmdesc_recipe.ts is stale: run `deno run -A lang/syntax/gen.ts`");
  }
});
