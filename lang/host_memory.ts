/**
 * An in-memory LangHost for tests, fuzzing and the editor: files are a path → text map,
 * paths are POSIX-style and joined relative to the importing file's directory.
 */
import type { LangHost } from "./program.ts";

/** Joins `rel` to the directory of `from` and normalises `.` and `..` (POSIX paths). */
export function joinRelative(from: string, rel: string): string {
  if (rel.startsWith("/")) return normalize(rel);
  const slash = from.lastIndexOf("/");
  const dir = slash >= 0 ? from.slice(0, slash + 1) : "";
  return normalize(dir + rel);
}

function normalize(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && out.length && out[out.length - 1] !== "..") out.pop();
    else if (part === ".." && abs) continue;
    else out.push(part);
  }
  return (abs ? "/" : "") + out.join("/");
}

export interface MemoryHost extends LangHost {
  files: Map<string, string>;
}

/**
 * `files`: path → text. `existing`: extra paths that exist but are not text the language
 * reads (boot payloads), so W0006 stays quiet for them.
 */
export function createMemoryHost(
  files: Record<string, string> = {},
  existing: Iterable<string> = [],
): MemoryHost {
  const map = new Map(Object.entries(files).map(([k, v]) => [normalize(k), v]));
  const extra = new Set([...existing].map(normalize));
  return {
    files: map,
    readFile: (path) => map.get(normalize(path)),
    fileExists: (path) => map.has(normalize(path)) || extra.has(normalize(path)),
    resolve: joinRelative,
  };
}
