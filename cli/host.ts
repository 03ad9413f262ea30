/**
 * What the commands read: the Deno-backed `LangHost` (host/disk_host.ts, shared with the
 * language server and the library) and the command line's input paths.
 */
export { DenoHost } from "../host/disk_host.ts";
import { vmdescFilesUnder } from "../host/vmdesc_files.ts";

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
    else out.push(...vmdescFilesUnder(p === "." ? "" : p.replace(/\/+$/, "")));
  }
  return out;
}
