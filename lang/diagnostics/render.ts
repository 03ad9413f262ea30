/**
 * Renders diagnostics for people (rustc/Elm-like snippets). The JSON report, positions
 * and counts live in report.ts (re-exported here); this module adds what a terminal
 * needs: display columns (widths.ts: string-width for East Asian Width, emoji and
 * grapheme clusters, loaded only for text beyond ASCII), tabs, control characters, colors.
 *
 * Pure: the caller passes a lookup from file name to source text (the CLI's host keeps
 * every file it read, imports included). No colors unless asked; the CLI decides from
 * the terminal, NO_COLOR and --no-color.
 */
import type { Diagnostic, Span } from "./types.ts";
import {
  clamp,
  counts,
  countText,
  lineOf,
  lineStarts,
  positionAt,
  type SourceLookup,
} from "./report.ts";
import { clusterWidth } from "./widths.ts";

// Everything of report.ts too, so one import serves a caller that renders both ways.
export * from "./report.ts";
export { loadWidths, withWidthsOnDemand } from "./widths.ts";

export interface RenderOptions {
  /** ANSI colors (default false). */
  color?: boolean;
  /** Columns a tab advances to (default 4). */
  tabWidth?: number;
}

// ── colors ─────────────────────────────────────────────────────────────────

type Style = "error" | "warning" | "info" | "gutter" | "bold" | "secondary" | "help";

const ANSI: Record<Style, string> = {
  error: "\x1b[1;31m",
  warning: "\x1b[1;33m",
  info: "\x1b[1;36m",
  gutter: "\x1b[1;34m",
  bold: "\x1b[1m",
  secondary: "\x1b[1;34m",
  help: "\x1b[1;36m",
};

function painter(color: boolean) {
  return (style: Style, text: string) => color && text ? `${ANSI[style]}${text}\x1b[0m` : text;
}

// ── human rendering ────────────────────────────────────────────────────────

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

interface DisplayLine {
  /** The line as printed: tabs expanded, control characters made visible. */
  text: string;
  /**
   * cols[i] = display column where UTF-16 offset i (relative to line start) begins; every
   * offset inside a cluster maps to the cluster's column, so a mark never splits it.
   */
  cols: number[];
  /** The printed clusters with their columns, for cutting a long line by columns. */
  cells: { text: string; col: number; width: number }[];
  /** Display width of the whole line. */
  width: number;
}

function displayLine(raw: string, tabWidth: number): DisplayLine {
  const cols: number[] = [];
  const cells: DisplayLine["cells"] = [];
  let col = 0;
  for (const { segment } of graphemes.segment(raw)) {
    for (let u = 0; u < segment.length; u++) cols.push(col);
    const cp = segment.codePointAt(0)!;
    let shown: string;
    let width: number;
    if (cp === 9) {
      width = tabWidth - (col % tabWidth);
      shown = " ".repeat(width);
    } else if (cp < 0x20 || cp === 0x7f) {
      // Control pictures (U+2400..) so stray bytes cannot drive the terminal; whatever
      // the cluster carried after the control character is dropped with it.
      shown = String.fromCodePoint(cp === 0x7f ? 0x2421 : 0x2400 + cp);
      width = 1;
    } else if (cp === 0xfeff) {
      // A byte order mark: not printed, no column.
      shown = "";
      width = 0;
    } else {
      shown = segment.toWellFormed(); // a lone surrogate prints as U+FFFD
      width = clusterWidth(shown);
    }
    cells.push({ text: shown, col, width });
    col += width;
  }
  cols.push(col);
  return { text: cells.map((c) => c.text).join(""), cols, cells, width: col };
}

/** The clusters of `d` that lie wholly in columns [from, to), and the column they start at. */
function columnSlice(d: DisplayLine, from: number, to: number): { text: string; start: number } {
  let text = "";
  let start = -1;
  for (const c of d.cells) {
    if (c.col < from || c.col + c.width > to) continue;
    if (start < 0) start = c.col;
    text += c.text;
  }
  return { text, start: start < 0 ? from : start };
}

interface Annotation {
  span: Span;
  message: string;
  primary: boolean;
}

/** Long lines are cut to a window around the marks so a minified file stays readable. */
const MAX_LINE_COLUMNS = 140;

class FileView {
  readonly starts: number[];
  private lines = new Map<number, DisplayLine>();
  constructor(readonly text: string, private tabWidth: number) {
    this.starts = lineStarts(text);
  }
  /** Raw line (0-based index) without its line ending. */
  raw(line: number): string {
    const start = this.starts[line];
    let end = line + 1 < this.starts.length ? this.starts[line + 1] : this.text.length;
    while (end > start && (this.text[end - 1] === "\n" || this.text[end - 1] === "\r")) end--;
    return this.text.slice(start, end);
  }
  display(line: number): DisplayLine {
    let d = this.lines.get(line);
    if (!d) {
      d = displayLine(this.raw(line), this.tabWidth);
      this.lines.set(line, d);
    }
    return d;
  }
  /** Display column of an absolute offset on a given line (clamped to the line). */
  col(line: number, offset: number): number {
    const d = this.display(line);
    const rel = Math.max(0, Math.min(offset - this.starts[line], d.cols.length - 1));
    return d.cols[rel];
  }
  lineOf(offset: number): number {
    return lineOf(this.starts, clamp(offset, this.text));
  }
  /**
   * An empty span at the very end of a file that ends with a newline points at an empty
   * last line; show it at the end of the last real line instead, as rustc does.
   */
  adjust(span: Span): { start: number; end: number } {
    const s = clamp(Math.min(span.start, span.end), this.text);
    const e = clamp(Math.max(span.start, span.end), this.text);
    const line = this.lineOf(s);
    if (s === e && s === this.text.length && line > 0 && this.starts[line] === s) {
      const at = this.starts[line - 1] + this.raw(line - 1).length;
      return { start: at, end: at };
    }
    return { start: s, end: e };
  }
}

/** One underline row: [fromCol, toCol) drawn with `mark`, then an optional message. */
interface Mark {
  from: number;
  to: number;
  primary: boolean;
  message: string;
}

export function renderDiagnostic(
  d: Diagnostic,
  sources: SourceLookup,
  options: RenderOptions = {},
): string {
  return new Renderer(sources, options).diagnostic(d);
}

/** Renders every diagnostic, separated by blank lines (no summary line). */
export function renderDiagnostics(
  diags: Diagnostic[],
  sources: SourceLookup,
  options: RenderOptions = {},
): string {
  const r = new Renderer(sources, options);
  return diags.map((d) => r.diagnostic(d)).join("\n");
}

class Renderer {
  private views = new Map<string, FileView | null>();
  private paint: ReturnType<typeof painter>;
  private tabWidth: number;
  /** Style of primary marks: the severity's color, as rustc does. */
  private primary: Style = "error";
  constructor(private sources: SourceLookup, options: RenderOptions) {
    this.paint = painter(options.color ?? false);
    this.tabWidth = options.tabWidth ?? 4;
  }

  private view(file: string): FileView | null {
    if (!this.views.has(file)) {
      const text = this.sources(file);
      this.views.set(file, text === undefined ? null : new FileView(text, this.tabWidth));
    }
    return this.views.get(file)!;
  }

  diagnostic(d: Diagnostic): string {
    const p = this.paint;
    const sev: Style = d.severity === "error"
      ? "error"
      : d.severity === "warning"
      ? "warning"
      : "info";
    const word = d.severity === "info" ? "note" : d.severity;
    this.primary = sev;
    let out = p(sev, `${word}[${d.code}]`) + p("bold", `: ${oneLine(d.message)}`) + "\n";

    // Group annotations by file: the primary's file first, then others in order of appearance.
    const anns: Annotation[] = [];
    let primaryMessage = "";
    for (const l of d.labels ?? []) {
      if (d.span && sameSpan(l.span, d.span) && !primaryMessage) primaryMessage = l.message;
    }
    if (d.span) anns.push({ span: d.span, message: primaryMessage, primary: true });
    for (const l of d.labels ?? []) {
      if (d.span && sameSpan(l.span, d.span) && l.message === primaryMessage) continue;
      anns.push({ span: l.span, message: l.message, primary: false });
    }
    const files: string[] = [];
    for (const a of anns) if (!files.includes(a.span.file)) files.push(a.span.file);

    // Gutter width from every line number we will print.
    let maxLine = 1;
    for (const a of anns) {
      const v = this.view(a.span.file);
      if (v) maxLine = Math.max(maxLine, v.lineOf(Math.max(a.span.start, a.span.end)) + 1);
    }
    const gw = String(maxLine).length;
    const pad = " ".repeat(gw);
    const bar = p("gutter", "|");

    let first = true;
    for (const file of files) {
      const fileAnns = anns.filter((a) => a.span.file === file);
      const v = this.view(file);
      const lead = fileAnns.find((a) => a.primary) ?? fileAnns[0];
      const arrow = first ? "-->" : ":::";
      if (!v) {
        out += `${pad}${p("gutter", arrow)} ${file}\n`;
        for (const a of fileAnns) {
          if (a.message) out += `${pad} ${p("gutter", "=")} note: ${oneLine(a.message)}\n`;
        }
        first = false;
        continue;
      }
      const pos = positionAt(v.text, v.adjust(lead.span).start, v.starts);
      if (!first) out += `${pad} ${bar}\n`;
      out += `${pad}${p("gutter", arrow)} ${file}:${pos.line}:${pos.column}\n`;
      out += `${pad} ${bar}\n`;
      out += this.snippet(v, fileAnns, gw);
      first = false;
    }
    if (files.length) out += `${pad} ${bar}\n`;
    if (d.hint) {
      const lines = d.hint.split(/\r?\n/);
      out += `${pad} ${p("gutter", "=")} ${p("bold", "help")}: ${lines[0]}\n`;
      for (const l of lines.slice(1)) out += `${pad}         ${l}\n`;
    }
    return out;
  }

  /** Source lines with marks under them; gaps of more than one line become "...". */
  private snippet(v: FileView, anns: Annotation[], gw: number): string {
    const p = this.paint;
    // Which lines to show, and the marks on each.
    const marks = new Map<number, Mark[]>();
    const add = (line: number, m: Mark) => {
      if (!marks.has(line)) marks.set(line, []);
      marks.get(line)!.push(m);
    };
    for (const a of anns) {
      const { start: s, end: e } = v.adjust(a.span);
      const ls = v.lineOf(s);
      // An end at the very start of a line belongs to the previous line.
      let le = v.lineOf(e);
      if (le > ls && v.starts[le] === e) le--;
      if (ls === le) {
        const from = v.col(ls, s);
        const to = Math.max(from + 1, v.col(ls, e));
        add(ls, { from, to, primary: a.primary, message: a.message });
        continue;
      }
      // Multi-line: mark from the start to the end of the first line, the content of the
      // lines in between (at most two shown), and up to the end on the last line.
      const lineMarks: number[] = [ls];
      for (let l = ls + 1; l < le; l++) {
        if (le - ls - 1 <= 2 || l === ls + 1) lineMarks.push(l);
      }
      lineMarks.push(le);
      for (const l of lineMarks) {
        const d = v.display(l);
        const indent = d.text.length - d.text.trimStart().length;
        const from = l === ls ? v.col(l, s) : Math.min(indent, d.cols[d.cols.length - 1]);
        const to = l === le ? v.col(l, e) : d.cols[d.cols.length - 1];
        add(l, {
          from,
          to: Math.max(from + 1, to),
          primary: a.primary,
          message: l === le ? a.message : "",
        });
      }
    }
    const lines = [...marks.keys()].sort((a, b) => a - b);
    let out = "";
    let prev = -1;
    for (const line of lines) {
      if (prev >= 0 && line > prev + 1) {
        if (line === prev + 2) out += this.sourceLine(v, prev + 1, gw, null);
        else out += p("gutter", "...") + "\n";
      }
      const ms = marks.get(line)!.sort((a, b) =>
        a.from - b.from || Number(b.primary) - Number(a.primary)
      );
      out += this.sourceLine(v, line, gw, ms);
      prev = line;
    }
    return out;
  }

  private sourceLine(v: FileView, line: number, gw: number, ms: Mark[] | null): string {
    const p = this.paint;
    const d = v.display(line);
    let text = d.text;
    let shift = 0;
    // Cut very long lines to a window around their marks, by display columns (the marks'
    // unit), never through a cluster.
    if (d.width > MAX_LINE_COLUMNS) {
      const lo = ms && ms.length ? Math.max(0, Math.min(...ms.map((m) => m.from)) - 20) : 0;
      const hi = lo + MAX_LINE_COLUMNS - (lo > 0 ? 3 : 0);
      const cut = columnSlice(d, lo, hi);
      text = (lo > 0 ? "..." : "") + cut.text + (hi < d.width ? "..." : "");
      if (lo > 0) shift = cut.start - 3;
    }
    const num = String(line + 1).padStart(gw);
    let out = `${p("gutter", num + " |")}${text ? " " + text : ""}\n`.replace(/ +\n$/, "\n");
    if (!ms) return out;
    const pad = " ".repeat(gw);
    // Underlines: marks share a row unless they overlap. A row's last mark carries its
    // message inline; other messages hang below on `|` connectors (as rustc does), so a
    // message always sits under the mark it belongs to.
    const placed = ms.map((m) => {
      const from = Math.max(0, m.from - shift);
      return { m, from, to: Math.max(from + 1, m.to - shift) };
    }).sort((a, b) => a.from - b.from);
    const rows: (typeof placed)[] = [];
    for (const x of placed) {
      const row = rows.find((r) => r[r.length - 1].to <= x.from);
      if (row) row.push(x);
      else rows.push([x]);
    }
    const hanging: typeof placed = [];
    const lineStart = `${pad} ${p("gutter", "|")} `;
    for (const row of rows) {
      let under = "";
      let col = 0;
      for (const x of row) {
        under += " ".repeat(x.from - col);
        under += p(
          x.m.primary ? this.primary : "secondary",
          (x.m.primary ? "^" : "-").repeat(x.to - x.from),
        );
        col = x.to;
      }
      const last = row[row.length - 1];
      if (last.m.message) {
        under += " " + p(last.m.primary ? this.primary : "secondary", oneLine(last.m.message));
      }
      for (const x of row) if (x !== last && x.m.message) hanging.push(x);
      out += lineStart + under + "\n";
    }
    hanging.sort((a, b) => b.from - a.from);
    const bars = (marks: typeof placed, upTo: number) => {
      let t = "";
      let col = 0;
      for (const x of [...marks].sort((a, b) => a.from - b.from)) {
        if (x.from >= upTo || x.from < col) continue;
        t += " ".repeat(x.from - col) + p(x.m.primary ? this.primary : "secondary", "|");
        col = x.from + 1;
      }
      return { t, col };
    };
    for (let i = 0; i < hanging.length; i++) {
      const x = hanging[i];
      const pending = hanging.slice(i);
      out += (lineStart + bars(pending, Infinity).t).trimEnd() + "\n";
      const left = bars(pending.slice(1), x.from);
      out += lineStart + left.t + " ".repeat(Math.max(0, x.from - left.col)) +
        p(x.m.primary ? this.primary : "secondary", oneLine(x.m.message)) + "\n";
    }
    return out;
  }
}

function sameSpan(a: Span, b: Span): boolean {
  return a.file === b.file && a.start === b.start && a.end === b.end;
}

function oneLine(s: string): string {
  return s.replace(/\r?\n/g, " ");
}

/** The closing line: "error: 2 errors, 1 warning emitted", or "" when there is nothing. */
export function renderSummary(diags: Diagnostic[], options: RenderOptions = {}): string {
  const p = painter(options.color ?? false);
  const n = counts(diags);
  const text = countText(diags);
  if (!text) return "";
  const word = n.error ? "error" : n.warning ? "warning" : "info";
  return p(word as Style, word === "info" ? "note" : word) + p("bold", `: ${text} emitted`) + "\n";
}
