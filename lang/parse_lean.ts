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
 * A UTF-8 byte order mark decoded as text (Deno's readTextFile keeps it). It is no part of
 * the program: a leading one reads as a space, so every offset, span and diagnostic is
 * that of the text as given, and the file means what it means without it. (The disk host
 * strips it when it reads a file, as editors do; the formatter puts it back.)
 */
export const BOM = "\uFEFF";

/** `text` with a leading BOM read as a space (same length, so offsets do not move). */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? " " + text.slice(1) : text;
}

/**
 * Parses with the fast parser; when it declines, Ohm decides and reports. Never throws
 * once lang/parse.ts is loaded (see OhmNotLoaded).
 */
export function parse(source: string, file = "<input>"): ParseResult {
  const text = withoutBom(source);
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

/**
 * Refuses what is nested deeper than MAX_TREE_DEPTH, one item at a time: a `let` keeps its
 * name without a value, a machine loses the setting (and is checked as recovered), and
 * the rest of the file stays.
 */
export function depthChecked(r: ParseResult, text: string, file: string): ParseResult {
  let diagnostics = r.diagnostics;
  let items = r.ast.items;
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    const deep = tooDeep(item);
    if (!deep) continue;
    if (items === r.ast.items) items = [...items];
    if (diagnostics === r.diagnostics) diagnostics = [...diagnostics];
    const start = Math.max(0, Math.min(deep.span.start, text.length));
    diagnostics.push(
      error(
        "E0001",
        `this expression is nested too deeply (more than ${MAX_TREE_DEPTH} levels)`,
        { file, start, end: Math.min(text.length, start + 1) },
        "split the expression with `let` constants",
      ),
    );
    if (item.kind === "Let") {
      items[k] = { ...item, value: null };
    } else if (item.kind === "Machine") {
      const settings = item.settings.filter((st) => !tooDeep(st));
      const dropped = item.settings.filter((st) => !settings.includes(st)).map((st) => st.span);
      items[k] = {
        ...item,
        settings,
        recovered: true,
        lost: [...(item.lost ?? []), ...dropped],
      };
    } else {
      items.splice(k--, 1);
    }
  }
  if (items === r.ast.items) return r;
  diagnostics.sort((a, b) => (a.span?.start ?? 0) - (b.span?.start ?? 0));
  return { ast: { ...r.ast, items }, diagnostics };
}

/** The first node nested deeper than MAX_TREE_DEPTH under `root`, or null. */
function tooDeep(root: Node): Node | null {
  const stack: [Node, number][] = [[root, 1]];
  while (stack.length) {
    const [n, d] = stack.pop()!;
    if (d > MAX_TREE_DEPTH) return n;
    for (const c of children(n)) stack.push([c, d + 1]);
  }
  return null;
}
