/** Program-wide checks of constants: a `let` of the main file that nothing uses (W0005). */
import { type Diags, warning } from "../diagnostics/make.ts";
import type { Program } from "../program.ts";
import { normalize } from "../../plan/paths.ts";

/**
 * Diagnostics shared by all machines: unused constants in the main file (W0005). When the
 * main file is a library of `importers` (files checked with it that import it), a use in
 * any of them counts.
 */
export function checkProgram(program: Program, diags: Diags, importers: Program[] = []) {
  const usedByImporter = (name: string) =>
    importers.some((p) => {
      const theirs = p.lets.get(name);
      return !!theirs && theirs.uses.length > 0 &&
        normalize(theirs.file) === normalize(program.main);
    });
  for (const sym of program.lets.values()) {
    if (sym.file !== program.main || sym.uses.length || usedByImporter(sym.name)) continue;
    diags.push(
      warning(
        "W0005",
        `the constant \`${sym.name}\` is never used`,
        sym.span,
        "remove it, or use it",
        [],
        [
          { title: `remove \`let ${sym.name}\``, span: sym.node.span, replacement: "" },
        ],
      ),
    );
  }
}
