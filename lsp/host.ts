/**
 * The LangHost the server gives `lang/`: open editor buffers win over the disk, so an
 * unsaved change in an imported file is seen at once. Every path read is recorded, which
 * tells the server which open documents to re-check when another one changes.
 */
import { resolvePath } from "../cli/host.ts";

export interface BufferSource {
  /** Text of an open buffer for this file system path, or undefined. */
  openText(path: string): string | undefined;
}

export class LspHost {
  /** Paths read (or probed) during the current analysis. */
  readonly touched = new Set<string>();
  readonly #disk = new Map<string, string | undefined>();

  constructor(private readonly buffers: BufferSource) {}

  readFile(path: string): string | undefined {
    this.touched.add(path);
    const open = this.buffers.openText(path);
    if (open !== undefined) return open;
    if (this.#disk.has(path)) return this.#disk.get(path);
    let text: string | undefined;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      text = undefined;
    }
    this.#disk.set(path, text);
    return text;
  }

  fileExists(path: string): boolean {
    this.touched.add(path);
    if (this.buffers.openText(path) !== undefined) return true;
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  }

  resolve(fromFile: string, relPath: string): string {
    return resolvePath(fromFile, relPath);
  }

  /** Forget cached disk contents (a watched file changed on disk). */
  invalidate(path?: string) {
    if (path === undefined) this.#disk.clear();
    else this.#disk.delete(path);
  }

  /** Source lookup for span conversion (buffers first). */
  source = (path: string): string | undefined => this.readFile(path);
}
