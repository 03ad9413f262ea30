/**
 * The files that import an open one, so that a library (a file of constants that the
 * machines beside it import) is checked in the editor as `vmdesc check DIR` checks it: it
 * need not define a machine (no E0404), and its constant is unused (W0005) only when no
 * importer uses it either (`CompileOptions.importers`).
 *
 * Where importers are looked for: the `.vmdesc` files of the workspace folder that holds
 * the file, or of the file's own folder when no workspace folder does. Only files whose
 * text names the library's file (or, for imports through other files, one of those) are
 * compiled, and a file counts when its program loaded the library. Every file looked at
 * is read through the host (open buffers first), so it joins the library's dependencies:
 * a file that starts or stops importing the library gets it re-checked.
 */
import { compile } from "../lang/mod.ts";
import type { Program } from "../lang/program.ts";
import type { DenoHost } from "../host/disk_host.ts";
import { vmdescFilesUnder } from "../host/vmdesc_files.ts";
import { normalize } from "../plan/paths.ts";

/** How long a folder's listing is reused: a keystroke does not walk the tree again. */
const LISTING_TTL_MS = 2000;
/** Directory entries one listing looks at, at most (an editor opened on `/`). */
const LISTING_BUDGET = 20_000;

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);
const dirName = (p: string) => p.slice(0, Math.max(0, p.lastIndexOf("/"))) || "/";

export class Importers {
  /** The editor's workspace folders (file system paths). */
  roots: string[] = [];
  readonly #listings = new Map<string, { at: number; files: string[] }>();

  /** Files were created or deleted: list the folders afresh. */
  forgetListings(): void {
    this.#listings.clear();
  }

  /** The programs of the files that import `path`, directly or through other files. */
  of(path: string, host: DenoHost): Program[] {
    const candidates = this.#files(this.#scope(path)).filter((f) => f !== path);
    // The files naming the library, then those naming one of them, until none is added.
    const names = new Set([baseName(path)]);
    const picked: string[] = [];
    for (let grew = true; grew;) {
      grew = false;
      for (const f of candidates) {
        if (picked.includes(f)) continue;
        const text = host.readFile(f);
        if (text === undefined || !text.includes("import")) continue;
        if ([...names].some((n) => text.includes(n))) {
          picked.push(f);
          names.add(baseName(f));
          grew = true;
        }
      }
    }
    const target = normalize(path);
    const out: Program[] = [];
    for (const f of picked) {
      const program = compile(host.readFile(f)!, { file: f, host }).program;
      if ([...program.files.keys()].some((p) => normalize(p) === target)) out.push(program);
    }
    return out;
  }

  /** The workspace folder holding `path` (the innermost), else the file's own folder. */
  #scope(path: string): string {
    const holding = this.roots.filter((r) => path.startsWith(r.endsWith("/") ? r : r + "/"));
    return holding.sort((a, b) => b.length - a.length)[0] ?? dirName(path);
  }

  #files(dir: string): string[] {
    const now = performance.now();
    const kept = this.#listings.get(dir);
    if (kept && now - kept.at < LISTING_TTL_MS) return kept.files;
    let files: string[];
    try {
      files = vmdescFilesUnder(dir, { entries: LISTING_BUDGET });
    } catch {
      files = []; // a folder that went away or cannot be read: no importers from there
    }
    this.#listings.set(dir, { at: now, files });
    return files;
  }
}
