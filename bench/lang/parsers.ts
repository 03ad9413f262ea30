/**
 * The fast parser (lang/syntax/fast_parse.ts) against Ohm (the grammar's own matcher plus
 * the AST semantics, lang/parse.ts `parseWithOhm`) on the same valid texts, side by side:
 * each round times both on the same text, in alternating order so neither always runs on a
 * warmer cache, and the report gives the best and the median of each and their ratio. The
 * trees must be identical (spans included), or the numbers would compare different work.
 */
import { fastParse } from "../../lang/syntax/fast_parse.ts";
import { parseWithOhm } from "../../lang/parse.ts";
import { median, round as roundTo } from "../stats.ts";

export interface ParserRow {
  text: string;
  bytes: number;
  runs: number;
  fast_best_ms: number;
  fast_median_ms: number;
  ohm_best_ms: number;
  ohm_median_ms: number;
  /** Ohm's median over the fast parser's median: how many times faster the fast path is. */
  speedup_median: number;
  speedup_best: number;
  fast_kib_per_s: number;
  ohm_kib_per_s: number;
}

/** The middle of `xs` (the mean of the two middle values for an even count). */

const round = (x: number) => roundTo(x, 2);

/** A tree as text, for comparing two (number literals hold bigints). */
const treeText = (tree: unknown) =>
  JSON.stringify(tree, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));

/** `texts`: name → the files of that sample (each parsed on its own; times add up). */
export function compareParsers(texts: [string, string[]][], runs: number): ParserRow[] {
  const rows: ParserRow[] = [];
  for (const [name, files] of texts) {
    for (const [i, text] of files.entries()) {
      const fast = treeText(fastParse(text, `f${i}`));
      const ohm = parseWithOhm(text, `f${i}`);
      if (ohm.diagnostics.length || fast !== treeText(ohm.ast)) {
        throw new Error(`${name}: the parsers disagree (or the text is not valid)`);
      }
    }
    const time = (parse: (text: string, file: string) => unknown) => {
      const t0 = performance.now();
      for (const [i, text] of files.entries()) parse(text, `f${i}`);
      return performance.now() - t0;
    };
    const fastParseOnly = (t: string, f: string) => fastParse(t, f);
    const ohmParseOnly = (t: string, f: string) => parseWithOhm(t, f);
    // Warm-up: the first calls compile and optimise; that is start-up, measured elsewhere.
    for (let k = 0; k < 2; k++) time(fastParseOnly), time(ohmParseOnly);
    const fastMs: number[] = [];
    const ohmMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      if (r % 2 === 0) {
        fastMs.push(time(fastParseOnly));
        ohmMs.push(time(ohmParseOnly));
      } else {
        ohmMs.push(time(ohmParseOnly));
        fastMs.push(time(fastParseOnly));
      }
    }
    const bytes = files.reduce((s, t) => s + t.length, 0);
    const kib = bytes / 1024;
    const [fb, fm, ob, om] = [
      Math.min(...fastMs),
      median(fastMs),
      Math.min(...ohmMs),
      median(ohmMs),
    ];
    rows.push({
      text: name,
      bytes,
      runs,
      fast_best_ms: round(fb),
      fast_median_ms: round(fm),
      ohm_best_ms: round(ob),
      ohm_median_ms: round(om),
      speedup_median: round(om / fm),
      speedup_best: round(ob / fb),
      fast_kib_per_s: Math.round(kib / (fm / 1000)),
      ohm_kib_per_s: Math.round(kib / (om / 1000)),
    });
  }
  return rows;
}

/** An SVG panel: per sample, Ohm's and the fast parser's median as bars on one scale. */
export function parsersChart(rows: ParserRow[], y0: number, width: number): {
  svg: string;
  height: number;
} {
  const x0 = 170;
  let y = y0 + 28;
  let svg = `<text x="10" y="${y0 + 14}" font-size="14" font-weight="bold">` +
    `parse only, same valid texts, interleaved: fast parser vs Ohm (median)</text>`;
  for (const r of rows) {
    const scale = (width - x0 - 220) / r.ohm_median_ms;
    svg += `<text x="10" y="${y + 22}" font-size="13" font-weight="bold">${r.text}</text>`;
    const bars: [string, number, string][] = [
      ["Ohm", r.ohm_median_ms, "#868e96"],
      [`fast (${r.speedup_median.toFixed(0)}× faster)`, r.fast_median_ms, "#2b8a3e"],
    ];
    for (const [label, ms, color] of bars) {
      const w = Math.max(1, ms * scale);
      svg += `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="16" fill="${color}"/>` +
        `<text x="${(x0 + w + 6).toFixed(1)}" y="${y + 12}" font-size="12">${label} ${
          ms.toFixed(2)
        } ms</text>`;
      y += 19;
    }
    y += 12;
  }
  return { svg, height: y - y0 };
}
