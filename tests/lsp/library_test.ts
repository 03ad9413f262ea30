/**
 * A library file open in the editor (issue 14): a file of constants that a machine beside
 * it imports is checked as `vmdesc check DIR` checks it, through the real server process.
 * No E0404 "defines no machine" and no W0005 for the constants its importer uses; the one
 * nobody uses is still reported, and so is a constant the importer stops using in an
 * unsaved edit. A lone file that nothing imports keeps E0404 and W0005.
 */
import { assertEquals } from "./assert.ts";
import type { Message } from "./jsonrpc_client.ts";
import {
  checkJson,
  checkJsonIn,
  fileUri,
  initialize,
  lspDiags,
  sortDiags,
  startServer,
} from "./helpers.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const LIB = "let ram = 64 MiB\nlet com1 = 0x3f8\nlet spare = 1\n";
const MICRO = `import "lib/consts.vmdesc"
machine micro {
  memory ram
  device serial com1 { port com1 }
  boot pvh "g.elf"
}
`;

Deno.test("lsp: a library file is checked as its importers' library", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-lsp-lib-" });
  const lone = await Deno.makeTempDir({ prefix: "vmdesc-lsp-lone-" });
  const c = startServer();
  try {
    await Deno.mkdir(`${dir}/lib`);
    const libPath = `${dir}/lib/consts.vmdesc`;
    const microPath = `${dir}/micro.vmdesc`;
    await Deno.writeTextFile(libPath, LIB);
    await Deno.writeTextFile(microPath, MICRO);
    await Deno.writeTextFile(`${dir}/g.elf`, "");
    await Deno.writeTextFile(`${lone}/consts.vmdesc`, LIB);
    await initialize(c, dir);

    const published = (uri: string, version: number) =>
      c.waitFor((m: Message) =>
        m.method === "textDocument/publishDiagnostics" && (m.params as Any).uri === uri &&
        (m.params as Any).version === version
      );
    const open = async (path: string, text: string) => {
      const uri = fileUri(path);
      const wait = published(uri, 1);
      await c.notify("textDocument/didOpen", {
        textDocument: { uri, languageId: "vmdesc", version: 1, text },
      });
      return sortDiags(lspDiags(await wait));
    };
    const unused = (ds: { code: string; message: string }[]) =>
      ds.filter((d) => d.code === "W0005").map((d) => d.message.match(/`(\w+)`/)?.[1]).sort();

    // The library, with its importer on disk only (not open).
    const lib = await open(libPath, LIB);
    assertEquals(lib.map((d) => d.code), ["W0005"], JSON.stringify(lib));
    assertEquals(unused(lib), ["spare"]);
    // What `vmdesc check DIR` reports for the same file.
    assertEquals(lib, sortDiags(await checkJsonIn(dir, ["."], undefined, "lib/consts.vmdesc")));

    // The importer, opened and edited (unsaved) to stop using `com1`: the library is
    // re-checked and `com1` is unused now.
    const microUri = fileUri(microPath);
    await open(microPath, MICRO);
    const libUri = fileUri(libPath);
    const again = c.waitFor((m: Message) =>
      m.method === "textDocument/publishDiagnostics" && (m.params as Any).uri === libUri &&
      unused(lspDiags(m)).includes("com1")
    );
    await c.notify("textDocument/didChange", {
      textDocument: { uri: microUri, version: 2 },
      contentChanges: [{ text: MICRO.replace("port com1", "port 0x3f8") }],
    });
    assertEquals(unused(lspDiags(await again)), ["com1", "spare"]);

    // A file nothing imports is no library: it defines no machine, and nothing uses it.
    const alone = await open(`${lone}/consts.vmdesc`, LIB);
    assertEquals(alone.map((d) => d.code), ["E0404", "W0005", "W0005", "W0005"]);
    assertEquals(alone, sortDiags(await checkJson(`${lone}/consts.vmdesc`)));

    assertEquals(await c.request("shutdown", null), null);
    await c.notify("exit", null);
    assertEquals((await c.close(10_000)).code, 0, c.stderr);
  } finally {
    await c.kill().catch(() => {});
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(lone, { recursive: true });
  }
});
