/**
 * How vmdesc resolves a relative path: against the directory of the file that names it.
 *
 * This is Plan vocabulary, which is why it lives in `plan/`: a Plan's `boot.path`,
 * `boot.initrd` and serial `output` file are relative to the Plan's own directory (the
 * directory of its `source`), and the compiler writes them that way from paths that a
 * `.vmdesc` file names relative to itself (`import`, `boot`, `output`). `lang/` (which
 * rebases such paths onto the main file), `runtime/` (which resolves them from the Plan),
 * and the front ends (`host/`, `cli/`, `lsp/`) all need the same answer, and `plan/` is
 * the one folder every one of them may import.
 *
 * POSIX paths, string work only: no file system, so it is as pure as the rest of `plan/`.
 */

/** The directory part of `path`: "a/b" for "a/b/c", "/" for "/c", "." when there is none. */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return ".";
  if (i === 0) return "/";
  return path.slice(0, i);
}

/** The last component of `path`: "c" for "a/b/c". */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * `path` without `.` components, empty components or `..` that can be undone: "a/./b/../c"
 * is "a/c". A relative path keeps its leading `..` ("../x"); an absolute one cannot climb
 * above "/". The empty relative path is ".".
 */
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
 * `relPath` as named inside `fromFile`: relative to the directory of `fromFile`, normalised,
 * and kept relative when both are relative (so messages show `examples/common.vmdesc`, not
 * an absolute path). An absolute `relPath` stands as it is. A pseudo file such as
 * "<stdin>" or "<input>" has no directory: its paths resolve against the current one.
 */
export function resolvePath(fromFile: string, relPath: string): string {
  if (relPath.startsWith("/")) return normalize(relPath);
  const dir = fromFile.startsWith("<") ? "." : dirname(fromFile);
  return normalize(`${dir}/${relPath}`);
}

/**
 * `to` as seen from the directory `fromDir` (both normalised; both relative or both
 * absolute, else `to` is returned as it is): relativePath("a/b", "a/c/d") is "../c/d".
 */
export function relativePath(fromDir: string, to: string): string {
  if (fromDir.startsWith("/") !== to.startsWith("/")) return to;
  const a = fromDir.split("/").filter((x) => x && x !== ".");
  const b = to.split("/").filter((x) => x && x !== ".");
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  if (a.slice(i).includes("..")) return to; // cannot climb out of an unknown directory
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}
