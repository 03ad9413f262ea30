/**
 * Applying an editor's content changes to a document and its incremental parser together,
 * so the parser always holds exactly the editor's text.
 */
import type { TextDocumentContentChangeEvent } from "vscode-languageserver";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { IncrementalParser } from "../lang/parse.ts";

export function applyChanges(
  doc: TextDocument,
  parser: IncrementalParser,
  changes: TextDocumentContentChangeEvent[],
  version: number,
): TextDocument {
  for (const change of changes) {
    if ("range" in change) {
      // Offsets against the text as it is before this change (changes apply in order).
      const start = doc.offsetAt(change.range.start);
      const end = doc.offsetAt(change.range.end);
      parser.update(start, end, change.text);
    } else {
      parser.setText(change.text);
    }
    doc = TextDocument.update(doc, [change], version);
  }
  return doc;
}
