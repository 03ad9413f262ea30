import { assertEquals } from "../tests/lsp/assert.ts";
import { LineIndex, pathToUri, uriToPath } from "./convert.ts";
import { TextDocument } from "vscode-languageserver-textdocument";

Deno.test("LineIndex agrees with TextDocument on LF, CRLF, CR and surrogate pairs", () => {
  const text = "a\nbc\r\nd\re😀f\n\nlast";
  const idx = new LineIndex(text);
  const doc = TextDocument.create("file:///x", "vmdesc", 1, text);
  for (let off = 0; off <= text.length + 2; off++) {
    assertEquals(idx.positionAt(off), doc.positionAt(off), `offset ${off}`);
  }
});

Deno.test("paths and file URIs round-trip, including spaces", () => {
  for (const p of ["/tmp/a.vmdesc", "/tmp/with space/b c.vmdesc", "/x/ü.vmdesc"]) {
    assertEquals(uriToPath(pathToUri(p)), p);
  }
  assertEquals(pathToUri("/tmp/a b.vmdesc"), "file:///tmp/a%20b.vmdesc");
});
