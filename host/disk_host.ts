/**
 * The `LangHost` that reads the disk, for every front end: the CLI (with texts that are
 * not on disk, such as stdin, set in `files`), the language server (open editor buffers
 * win over the disk, so an unsaved change in an imported file is seen at once) and the
 * library's `compileText`/`compileFile`.
 *
 * Every text read is kept, so diagnostics in imported files can be rendered with their
 * source lines, and every path read or probed is recorded in `touched`, which tells the
 * language server which open documents to re-check when another one changes.
 */
import type { LangHost } from "../lang/program.ts";
import { resolvePath } from "../plan/paths.ts";

/** Texts of open editor buffers by file system path (the language server's documents). */
export interface BufferSource {
  /** Text of an open buffer for this file system path, or undefined. */
  openText(path: string): string | undefined;
}

export class DenoHost implements LangHost {
  /**
   * Texts by the path `lang/` used: every file read (`undefined` marks a missing one) and
   * texts that are not on disk (stdin for `fmt -`/`check -`, by the name used in spans).
   */
  readonly files = new Map<string, string | undefined>();
  /** Paths read or probed since this set was last cleared. */
  readonly touched = new Set<string>();
  readonly #buffers: BufferSource | null;

  constructor(options: { buffers?: BufferSource } = {}) {
    this.#buffers = options.buffers ?? null;
  }

  readFile(path: string): string | undefined {
    this.touched.add(path);
    const open = this.#buffers?.openText(path);
    if (open !== undefined) return open;
    if (this.files.has(path)) return this.files.get(path);
    let text: string | undefined;
    try {
      // Decoded as editors decode it: a UTF-8 byte order mark is no part of the text, so
      // offsets into an imported file are those the editor shows for it.
      text = Deno.readTextFileSync(path).replace(/^\uFEFF/, "");
    } catch {
      text = undefined;
    }
    this.files.set(path, text);
    return text;
  }

  fileExists(path: string): boolean {
    this.touched.add(path);
    if (this.#buffers?.openText(path) !== undefined) return true;
    if (this.files.get(path) !== undefined) return true;
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  }

  resolve(fromFile: string, relPath: string): string {
    return resolvePath(fromFile, relPath);
  }

  /** Forget kept texts (a watched file changed on disk), one path or all of them. */
  invalidate(path?: string): void {
    if (path === undefined) this.files.clear();
    else this.files.delete(path);
  }

  /** Source lookup for the diagnostics renderer and span conversion (buffers first). */
  source = (file: string): string | undefined => this.readFile(file);
}
