/**
 * The `.vmdesc` files under a folder, as `vmdesc check DIR` checks them together and the
 * language server looks for the files importing an open one: sorted (a folder's files
 * before its subfolders'), hidden folders and node_modules skipped.
 */

/**
 * Every `.vmdesc` file under `dir` ("" is the current directory, listed without "./").
 * `budget.entries` (if given) bounds the directory entries looked at: the walk stops
 * when it is spent, so an editor opened on a huge tree does not walk all of it.
 */
export function vmdescFilesUnder(dir: string, budget?: { entries: number }): string[] {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const e of Deno.readDirSync(dir || ".")) {
    if (budget && --budget.entries < 0) break;
    const path = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory && !e.name.startsWith(".") && e.name !== "node_modules") dirs.push(path);
    else if (e.isFile && e.name.endsWith(".vmdesc")) files.push(path);
  }
  files.sort();
  dirs.sort();
  return [...files, ...dirs.flatMap((d) => vmdescFilesUnder(d, budget))];
}
