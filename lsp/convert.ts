/** Conversions between lang's offset spans and LSP's line/character positions and URIs. */
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Position, Range } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";

export function uriToPath(uri: string): string {
  return uri.startsWith("file:") ? fileURLToPath(uri) : uri;
}

export function pathToUri(path: string): string {
  return path.startsWith("/") ? pathToFileURL(path).href : path;
}

/**
 * Line starts of a text, for converting offsets of files that are not open
 * (labels and definitions in imported files). Offsets are UTF-16 code units on
 * both sides (lang's spans and LSP's default position encoding), so no re-encoding.
 */
export class LineIndex {
  readonly #starts: number[] = [0];
  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.#starts.push(i + 1);
      else if (c === 13 && text.charCodeAt(i + 1) !== 10) this.#starts.push(i + 1);
    }
  }
  positionAt(offset: number): Position {
    offset = Math.max(0, Math.min(offset, this.text.length));
    // Inside a "\r\n" pair counts as the end of the line (as TextDocument does).
    if (
      offset > 0 && this.text.charCodeAt(offset - 1) === 13 && this.text.charCodeAt(offset) === 10
    ) offset--;
    let lo = 0, hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: offset - this.#starts[lo] };
  }
}

export type OffsetText = Pick<TextDocument, "positionAt">;

export function rangeOf(doc: OffsetText, start: number, end: number): Range {
  return { start: doc.positionAt(start), end: doc.positionAt(end) };
}
