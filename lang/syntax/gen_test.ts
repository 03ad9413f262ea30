import { generated } from "./gen.ts";
import { KEYWORDS, RESERVED_WORDS, STRUCTURE_KEYWORDS, UNITS } from "./keywords.ts";

Deno.test("vmdesc_recipe.ts and keywords.ts are generated from the current vmdesc.ohm", () => {
  const source = Deno.readTextFileSync(new URL("./vmdesc.ohm", import.meta.url));
  for (const [target, text] of generated(source)) {
    if (Deno.readTextFileSync(target) !== text) {
      throw new Error(`${target.pathname} is stale: run \`deno run -A lang/syntax/gen.ts\``);
    }
  }
});

Deno.test("keywords.ts holds the grammar's words", () => {
  // A few facts of the language, so a generator that read the wrong rules fails here.
  const has = (list: readonly string[], ...words: string[]) => {
    for (const w of words) if (!list.includes(w)) throw new Error(`${w} missing from ${list}`);
  };
  has(KEYWORDS, "import", "machine", "pci_hole", "ecam", "buses", "bar", "hide", "auto");
  has(RESERVED_WORDS, "import", "let", "machine", "extends", "auto", "true", "false", "MiB");
  has(STRUCTURE_KEYWORDS, "pci_hole", "device", "pci", "boot", "cpuid");
  if (UNITS.join() !== "B,KiB,MiB,GiB,TiB") throw new Error(`units: ${UNITS}`);
  if (RESERVED_WORDS.includes("device" as never)) throw new Error("device is not reserved");
});

Deno.test("the staleness check notices a grammar edit", () => {
  const source = Deno.readTextFileSync(new URL("./vmdesc.ohm", import.meta.url));
  const edited = source.replace(
    'hide = "hide" ~identPart',
    'hide = "hide" ~identPart\n  show = "show" ~identPart',
  );
  if (edited === source) throw new Error("the edit did not apply");
  const [, keywords] = generated(edited).find(([u]) => u.pathname.endsWith("keywords.ts"))!;
  if (!keywords.includes('"show"')) throw new Error("a new keyword rule is not picked up");
});
