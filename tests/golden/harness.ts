/**
 * Shared pieces of the golden tests: a host reading files relative to the repository
 * root (so paths in messages are stable, whatever the current directory), and
 * compare-or-update of an expected file (`UPDATE_GOLDEN=1` rewrites instead of comparing).
 */
import { resolvePath } from "../../plan/paths.ts";

export const root = new URL("../../", import.meta.url);

export function repoHost() {
  const files = new Map<string, string | undefined>();
  const readFile = (path: string): string | undefined => {
    if (!files.has(path)) {
      try {
        files.set(path, Deno.readTextFileSync(path.startsWith("/") ? path : new URL(path, root)));
      } catch {
        files.set(path, undefined);
      }
    }
    return files.get(path);
  };
  return {
    files,
    readFile,
    fileExists(path: string): boolean {
      try {
        return Deno.statSync(path.startsWith("/") ? path : new URL(path, root)).isFile;
      } catch {
        return false;
      }
    },
    resolve: resolvePath,
    source: (file: string) => readFile(file),
  };
}

export const updating = (() => {
  try {
    return Deno.env.get("UPDATE_GOLDEN") === "1";
  } catch {
    return false;
  }
})();

/** Compares `actual` with the file at `path` (repo-relative); rewrites it when updating. */
export async function golden(path: string, actual: string): Promise<void> {
  const url = new URL(path, root);
  if (updating) {
    const dir = new URL(".", url);
    await Deno.mkdir(dir, { recursive: true });
    let old: string | undefined;
    try {
      old = await Deno.readTextFile(url);
    } catch { /* new golden */ }
    if (old !== actual) {
      await Deno.writeTextFile(url, actual);
      console.log(`  updated ${path}`);
    }
    return;
  }
  let expected: string;
  try {
    expected = await Deno.readTextFile(url);
  } catch {
    throw new Error(`missing golden file ${path}; run with UPDATE_GOLDEN=1 and review it`);
  }
  if (expected !== actual) {
    throw new Error(
      `${path} differs (UPDATE_GOLDEN=1 rewrites it; review the diff)\n${diff(expected, actual)}`,
    );
  }
}

/** A short line diff for failure messages. */
function diff(expected: string, actual: string): string {
  const a = expected.split("\n");
  const b = actual.split("\n");
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < 40; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] !== undefined) out.push(`${String(i + 1).padStart(4)} - ${a[i]}`);
    if (b[i] !== undefined) out.push(`${String(i + 1).padStart(4)} + ${b[i]}`);
  }
  return out.join("\n");
}

export async function listDir(path: string, pattern: RegExp): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(new URL(path, root))) {
      if (e.isFile && pattern.test(e.name)) out.push(e.name);
    }
  } catch { /* folder not there yet */ }
  return out.sort();
}
