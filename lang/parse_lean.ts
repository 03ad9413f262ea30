/**
 * The parse entry without ohm-js: the hand-written fast parser (lang/syntax/fast_parse.ts)
 * parses every well-formed file; only when it declines (a syntax error, or anything
 * unusual) does Ohm — the grammar's own matcher, in lang/parse.ts — decide and report.
 *
 * Loading ohm-js and building the grammar costs tens of milliseconds at start-up, so this
 * module does not import it: lang/parse.ts installs the Ohm fallback when it is loaded
 * (lang/mod.ts loads it, so library users and the LSP always have it). The CLI imports
 * only this side and loads lang/parse.ts on demand (lang/ohm_on_demand.ts) when a parse
 * needs Ohm. Both paths build the same tree (lang/syntax/fast_parse_test.ts).
 */
import { children, type Node, type Program } from "./ast.ts";
import type { Diagnostic } from "./diagnostics/types.ts";
import { error } from "./diagnostics/make.ts";
import { fastParse } from "./syntax/fast_parse.ts";

export interface ParseResult {
  /** The tree; on syntax errors it holds the items that did parse (possibly none). */
  ast: Program;
  diagnostics: Diagnostic[];
}

/** Parses text the fast parser declined (set by lang/parse.ts). */
type OhmFallback = (text: string, file: string) => ParseResult;

let ohmFallback: OhmFallback | null = null;

/** Called once by lang/parse.ts when it loads. */
export function installOhmFallback(f: OhmFallback): void {
  ohmFallback = f;
}

/**
 * Thrown by parse() when the text needs Ohm and lang/parse.ts has not been loaded; only
 * callers that import this module without lang/parse.ts (the CLI, through
 * lang/ohm_on_demand.ts, which then loads it and runs again) can see it.
 */
export class OhmNotLoaded extends Error {
  constructor() {
    super("this text needs the Ohm parser: import lang/parse.ts (or lang/mod.ts) first");
    this.name = "OhmNotLoaded";
  }
}

/**
 * Parses with the fast parser; when it declines, Ohm decides and reports. Never throws
 * once lang/parse.ts is loaded (see OhmNotLoaded).
 */
export function parse(text: string, file = "<input>"): ParseResult {
  const fast = fastParse(text, file);
  if (fast) return depthChecked({ ast: fast, diagnostics: [] }, text, file);
  if (!ohmFallback) throw new OhmNotLoaded();
  return depthChecked(ohmFallback(text, file), text, file);
}

/**
 * Trees deeper than this are refused with E0001: evaluation, the checks and the formatter
 * walk expressions recursively, and a 10000-term `1 + 1 + ...` (a left-deep chain the
 * parsers build without recursion) exhausted the stack there. Found by tests/fuzz/.
 */
const MAX_TREE_DEPTH = 500;

export function depthChecked(r: ParseResult, text: string, file: string): ParseResult {
  const stack: [Node, number][] = [[r.ast, 0]];
  while (stack.length) {
    const [n, d] = stack.pop()!;
    if (d > MAX_TREE_DEPTH) {
      const start = Math.max(0, Math.min(n.span.start, text.length));
      return {
        ast: { kind: "Program", items: [], span: { file, start: 0, end: text.length } },
        diagnostics: [
          error(
            "E0001",
            `this expression is nested too deeply (more than ${MAX_TREE_DEPTH} levels)`,
            { file, start, end: Math.min(text.length, start + 1) },
            "split the expression with `let` constants",
          ),
        ],
      };
    }
    for (const c of children(n)) stack.push([c, d + 1]);
  }
  return r;
}
