/**
 * The Deno-backed `LangHost` the CLI gives `lang/`: files come from disk, and every text
 * read is kept so diagnostics in imported files can be rendered with their source lines.
 */

/** Structurally the `LangHost` of `lang/mod.ts` (kept here so this file has no lang import). */
export interface DiskHost {
  readFile(path: string): string | undefined;
  fileExists(path: string): boolean;
  resolve(fromFile: string, relPath: string): string;
}

export class DenoHost implements DiskHost {
  /** Every file read, by the path `lang/` used; `undefined` marks a missing one. */
  readonly files = new Map<string, string | undefined>();

  /** Texts not on disk (stdin for `fmt -`/`check -`), by the name used in spans. */
  constructor(overlay: Record<string, string> = {}) {
    for (const [k, v] of Object.entries(overlay)) this.files.set(k, v);
  }

  readFile(path: string): string | undefined {
    if (this.files.has(path)) return this.files.get(path);
    let text: string | undefined;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      text = undefined;
    }
    this.files.set(path, text);
    return text;
  }

  fileExists(path: string): boolean {
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

  /** Source lookup for the diagnostics renderer. */
  source = (file: string): string | undefined => this.files.get(file) ?? this.readFile(file);
}

/**
 * `relPath` relative to the directory of `fromFile`, normalised but kept relative when
 * both are relative, so messages show `examples/common.vmdesc`, not an absolute path.
 * A pseudo file such as "<stdin>" resolves against the current directory.
 */
export function resolvePath(fromFile: string, relPath: string): string {
  if (relPath.startsWith("/")) return normalize(relPath);
  const dir = fromFile.startsWith("<") ? "" : dirname(fromFile);
  return normalize(dir ? `${dir}/${relPath}` : relPath);
}

export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return "";
  if (i === 0) return "/";
  return path.slice(0, i);
}

export function normalize(path: string): string {
  const abs = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  return abs ? "/" + joined : joined || ".";
}

/**
 * Command-line inputs with directories expanded to the `.vmdesc` files under them
 * (sorted, skipping hidden folders and node_modules), so `vmdesc fmt --check .` works.
 * Paths that are not directories (files, '-', missing paths) pass through unchanged;
 * the command reports a missing one.
 */
export function expandInputs(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = p !== "-" && Deno.statSync(p).isDirectory;
    } catch {
      isDir = false;
    }
    if (!isDir) out.push(p);
    else out.push(...walk(p === "." ? "" : p.replace(/\/+$/, "")));
  }
  return out;
}

function walk(dir: string): string[] {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const e of Deno.readDirSync(dir || ".")) {
    const path = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory && !e.name.startsWith(".") && e.name !== "node_modules") dirs.push(path);
    else if (e.isFile && e.name.endsWith(".vmdesc")) files.push(path);
  }
  files.sort();
  dirs.sort();
  return [...files, ...dirs.flatMap(walk)];
}
