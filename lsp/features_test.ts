/**
 * Every feature at every position of real files (valid, broken, and cut short at every
 * line) answers without throwing: the server's guard would hide such a bug as "no answer".
 */
import { assert } from "../tests/lsp/assert.ts";
import { type OpenDoc, Workspace } from "./mod.ts";
import { hover } from "./hover.ts";
import { completion } from "./completion.ts";
import { definition, prepareRename, references } from "./navigation.ts";
import { documentSymbols } from "./symbols.ts";
import { codeActions } from "./actions.ts";
import { formatDocument } from "./format.ts";
import { pathToUri } from "./convert.ts";

const root = new URL("../", import.meta.url).pathname;
const files = [
  `${root}tests/lsp/fixtures/main.vmdesc`,
  `${root}tests/lsp/fixtures/errors.vmdesc`,
  `${root}examples/scan.vmdesc`,
];

function open(ws: Workspace, path: string, text: string): OpenDoc {
  return ws.open(pathToUri(path), text);
}

function everything(ws: Workspace, d: OpenDoc) {
  const textDocument = { uri: d.uri };
  const text = d.doc.getText();
  let answered = 0;
  for (let off = 0; off <= text.length; off++) {
    const position = d.doc.positionAt(off);
    if (hover(ws, { textDocument, position })) answered++;
    completion(ws, { textDocument, position });
    definition(ws, { textDocument, position });
    references(ws, { textDocument, position, context: { includeDeclaration: true } });
    prepareRename(ws, { textDocument, position });
  }
  documentSymbols(ws, { textDocument });
  codeActions(ws, {
    textDocument,
    range: { start: d.doc.positionAt(0), end: d.doc.positionAt(text.length) },
    context: { diagnostics: [] },
  });
  formatDocument(ws, { textDocument, options: { tabSize: 2, insertSpaces: true } });
  return answered;
}

Deno.test("features answer everywhere in real files without throwing", () => {
  const ws = new Workspace(true);
  for (const f of files) {
    const d = open(ws, f, Deno.readTextFileSync(f));
    const answered = everything(ws, d);
    assert(answered > 10, `${f}: hover answered at ${answered} positions`);
  }
});

Deno.test("features answer on files cut short at every line (typing in progress)", () => {
  const ws = new Workspace(true);
  const text = Deno.readTextFileSync(files[0]);
  const lines = text.split("\n");
  for (let n = 0; n <= lines.length; n += 2) {
    const cut = lines.slice(0, n).join("\n") +
      (n < lines.length ? "\n" + lines[n].slice(0, 5) : "");
    ws.docs.clear();
    ws.byPath.clear();
    everything(ws, open(ws, files[0], cut));
  }
});
