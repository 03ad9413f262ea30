/**
 * An in-memory LangHost for tests, fuzzing and the editor: files are a path → text map,
 * paths are POSIX-style and resolved like every vmdesc path (plan/paths.ts).
 */
import type { LangHost } from "./program.ts";
import { normalize, resolvePath } from "../plan/paths.ts";

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
    resolve: resolvePath,
  };
}
