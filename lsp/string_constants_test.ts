/**
 * String constants in the editor (issue 14): hover on a use shows the text (and where it
 * is defined), go-to-definition jumps to the `let`, as for number constants.
 */
import { assert, assertEquals } from "../tests/lsp/assert.ts";
import { Workspace } from "./mod.ts";
import { hover } from "./hover.ts";
import { definition } from "./navigation.ts";
import { documentSymbols } from "./symbols.ts";
import { pathToUri } from "./convert.ts";

Deno.test("string constants: hover, definition and outline", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-strings-" });
  try {
    await Deno.writeTextFile(`${dir}/common.vmdesc`, 'let console = "console=ttyS0"\n');
    const path = `${dir}/main.vmdesc`;
    const text = `import "common.vmdesc"
let cmd = console + " quiet"
machine m {
  memory 64 MiB
  device serial com1 { port 0x3f8 }
  boot pvh "g.elf" { cmdline cmd }
}
`;
    await Deno.writeTextFile(path, text);
    const ws = new Workspace(true);
    const uri = pathToUri(path);
    const d = ws.open(uri, text);
    const at = (needle: string, delta = 1) => d.doc.positionAt(text.indexOf(needle) + delta);
    const hoverAt = (needle: string) => {
      const h = hover(ws, { textDocument: { uri }, position: at(needle) });
      const c = h?.contents;
      return typeof c === "object" && c && "value" in c ? c.value : "";
    };
    const use = hoverAt("cmd }");
    assert(use.includes('`cmd` = `"console=ttyS0 quiet"`'), use);
    const imported = hoverAt("console +");
    assert(imported.includes('`console` = `"console=ttyS0"`'), imported);
    assert(imported.includes("defined in"), imported);
    const loc = definition(ws, { textDocument: { uri }, position: at("console +") });
    const target = Array.isArray(loc) ? loc[0] : loc;
    assert(target && "uri" in target && target.uri.endsWith("/common.vmdesc"), String(loc));
    assertEquals(target.range.start, { line: 0, character: 4 });
    const local = definition(ws, { textDocument: { uri }, position: at("cmd }") });
    const l = Array.isArray(local) ? local[0] : local;
    assert(l && "range" in l, "definition of cmd");
    assertEquals(l.range.start, { line: 1, character: 4 });
    const syms = documentSymbols(ws, { textDocument: { uri } }) ?? [];
    const cmdSym = syms.find((s) => s.name === "cmd");
    assertEquals(cmdSym?.detail, '= "console=ttyS0 quiet"');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
