/**
 * Matching braces the way an editor folds them, for error recovery (recover.ts): with
 * indentation as the tie-breaker, so one missing `}` does not swallow the rest of the file.
 * Comments and strings are skipped.
 */

/**
 * Which `{` closes where. A `}` that starts its line closes the innermost open `{` whose
 * line is indented no deeper than it (deeper ones were left open); any other `}` closes
 * the innermost. What is left open at the end is unclosed.
 */
export class Braces {
  private close = new Map<number, number>();
  private lineStarts: number[] = [0];
  constructor(private s: string) {
    const n = s.length;
    const open: { at: number; indent: number }[] = [];
    let lineStart = 0;
    let first = true; // no token yet on this line
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 10) {
        lineStart = i + 1;
        this.lineStarts.push(lineStart);
        first = true;
      } else if (c === 32 || c === 9 || c === 13) {
        // blank
      } else if (c === 47 && s.charCodeAt(i + 1) === 47) {
        const e = s.indexOf("\n", i);
        i = (e < 0 ? n : e) - 1;
      } else if (c === 47 && s.charCodeAt(i + 1) === 42) {
        const e = s.indexOf("*/", i + 2);
        for (let k = i; k < (e < 0 ? n : e); k++) {
          if (s.charCodeAt(k) === 10) this.lineStarts.push(k + 1);
        }
        i = (e < 0 ? n : e + 2) - 1;
        first = false;
      } else if (c === 34) {
        let j = i + 1;
        while (j < n && s.charCodeAt(j) !== 34 && s.charCodeAt(j) !== 10) {
          j += s.charCodeAt(j) === 92 ? 2 : 1;
        }
        i = j < n && s.charCodeAt(j) === 34 ? j : j - 1;
        first = false;
      } else {
        if (c === 123) open.push({ at: i, indent: this.indent(lineStart) });
        else if (c === 125 && open.length) {
          if (first) {
            const indent = i - lineStart;
            while (open.length > 1 && open[open.length - 1].indent > indent) open.pop();
          }
          this.close.set(open.pop()!.at, i);
        }
        first = false;
      }
    }
  }

  private indent(lineStart: number): number {
    let i = lineStart;
    while (this.s.charCodeAt(i) === 32 || this.s.charCodeAt(i) === 9) i++;
    return i - lineStart;
  }

  /** The `}` matching the `{` at `open`, or -1 when it is never closed. */
  closeOf(open: number): number {
    return this.close.get(open) ?? -1;
  }

  /**
   * Where the block of an unclosed `{` ends: the start of the first later line whose first
   * token is indented no deeper than the `{`'s line (or `limit`).
   */
  implicitEnd(open: number, limit: number): number {
    const s = this.s;
    let line = this.lineIndex(open);
    const own = this.indent(this.lineStarts[line]);
    for (line++; line < this.lineStarts.length; line++) {
      const start = this.lineStarts[line];
      if (start >= limit) break;
      const indent = this.indent(start);
      const c = s.charCodeAt(start + indent);
      const blank = Number.isNaN(c) || c === 10 || c === 13 ||
        (c === 47 && (s.charCodeAt(start + indent + 1) === 47));
      if (!blank && indent <= own) return start;
    }
    return limit;
  }

  private lineIndex(at: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
