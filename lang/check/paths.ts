/**
 * Paths as a Plan holds them: relative to the Plan's source, the main file (plan/paths.ts).
 * A boot payload, initrd or serial output file named in an imported file in another
 * directory is re-expressed from the main file's directory.
 */
import type { LangHost } from "../program.ts";
import { basename, dirname, relativePath } from "../../plan/paths.ts";

/**
 * A path written in `fromFile`, re-expressed relative to the main file's directory (Plan
 * paths are relative to the Plan's source, the main file).
 */
export function rebaseOnMain(
  host: LangHost,
  mainFile: string,
  fromFile: string,
  p: string,
): string {
  return fromFile === mainFile || p.startsWith("/") ? p : relativePath(
    dirname(host.resolve(mainFile, basename(mainFile))),
    host.resolve(fromFile, p),
  );
}
