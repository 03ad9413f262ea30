/**
 * The VS Code extension's manifest is consistent: the language, grammar and configuration
 * files it names exist and agree (scope name, file extension, comment tokens), the client
 * it runs exists, and its default server command is the one `vmdesc lsp` answers to.
 */
import { assert, assertEquals } from "./assert.ts";
import { ROOT } from "./helpers.ts";

const dir = `${ROOT}/editors/vscode`;

Deno.test("vscode extension: manifest, grammar and language configuration agree", async () => {
  const pkg = JSON.parse(await Deno.readTextFile(`${dir}/package.json`));
  const [lang] = pkg.contributes.languages;
  assertEquals(lang.id, "vmdesc");
  assertEquals(lang.extensions, [".vmdesc"]);
  const [grammar] = pkg.contributes.grammars;
  assertEquals(grammar.language, "vmdesc");
  const tm = JSON.parse(await Deno.readTextFile(`${dir}/${grammar.path}`));
  assertEquals(tm.scopeName, grammar.scopeName);
  const conf = JSON.parse(await Deno.readTextFile(`${dir}/${lang.configuration}`));
  assertEquals(conf.comments, { lineComment: "//", blockComment: ["/*", "*/"] });
  // The word pattern keeps PCI addresses, hex numbers and names whole.
  const word = new RegExp(`^(?:${conf.wordPattern})$`);
  for (const w of ["00:02.0", "0xE000_0000", "ecam_base", "0b1010"]) assert(word.test(w), w);
  const main = await Deno.readTextFile(`${dir}/${pkg.main}`);
  assert(main.includes("vscode-languageclient/node"), "the client uses vscode-languageclient");
  assert(pkg.dependencies["vscode-languageclient"], "runtime dependency declared");
  assertEquals(pkg.contributes.configuration.properties["vmdesc.server.command"].default, [
    "vmdesc",
    "lsp",
    "--stdio",
  ]);
  const { HELP } = await import("../../cli/lsp.ts");
  assert(HELP.includes("--stdio"), "vmdesc lsp accepts --stdio");
});

Deno.test("vscode extension: *.plan.json files are validated against the bundled Plan schema", async () => {
  const pkg = JSON.parse(await Deno.readTextFile(`${dir}/package.json`));
  const [v] = pkg.contributes.jsonValidation;
  assertEquals(v.fileMatch, ["*.plan.json"]);
  assertEquals(v.url, "./schemas/plan.schema.json");
  const ignore = await Deno.readTextFile(`${dir}/.vscodeignore`);
  assert(!/^schemas/m.test(ignore), "the bundled schema is packed");
  // vsce runs vscode:prepublish before packing: in a copy of the layout it must bundle
  // exactly plan/schema.json where the manifest says.
  const tmp = await Deno.makeTempDir({ prefix: "vmdesc-vsce-" });
  try {
    await Deno.mkdir(`${tmp}/editors/vscode`, { recursive: true });
    await Deno.mkdir(`${tmp}/plan`);
    await Deno.copyFile(`${dir}/package.json`, `${tmp}/editors/vscode/package.json`);
    await Deno.copyFile(`${ROOT}/plan/schema.json`, `${tmp}/plan/schema.json`);
    const out = await new Deno.Command("npm", {
      args: ["run", "--silent", "vscode:prepublish"],
      cwd: `${tmp}/editors/vscode`,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(
      await Deno.readTextFile(`${tmp}/editors/vscode/${v.url}`),
      await Deno.readTextFile(`${ROOT}/plan/schema.json`),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
