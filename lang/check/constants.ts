/** Program-wide checks of constants: a `let` of the main file that nothing uses (W0005). */
import { type Diags, warning } from "../diagnostics/make.ts";
import type { Program } from "../program.ts";

/** Diagnostics shared by all machines: unused constants in the main file (W0005). */
export function checkProgram(program: Program, diags: Diags) {
  for (const sym of program.lets.values()) {
    if (sym.file !== program.main || sym.uses.length) continue;
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
