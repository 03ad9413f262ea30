/** "Did you mean" suggestions by edit distance. */

/** Edit distance (Levenshtein plus adjacent swaps), with an early exit past `max`. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = cur[0];
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      // A swap of two neighbours (`bsae` for `base`) is one typo, not two.
      if (
        i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) &&
        a.charCodeAt(i - 2) === b.charCodeAt(j - 1)
      ) cur[j] = Math.min(cur[j], prev2[j - 2] + 1);
      if (cur[j] < rowMin) rowMin = cur[j];
    }
    if (rowMin > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[b.length];
}

/**
 * The closest candidate to `word`, if it is close enough to be a plausible typo:
 * distance at most 1 for short words, up to a third of the length for longer ones.
 */
export function suggest(word: string, candidates: Iterable<string>): string | null {
  const max = Math.max(1, Math.floor(word.length / 3));
  let best: string | null = null;
  let bestD = max + 1;
  const lower = word.toLowerCase();
  for (const c of candidates) {
    if (c === word) continue;
    // A case-only difference is the most likely typo of all.
    const d = c.toLowerCase() === lower ? 0.5 : editDistance(word, c, max);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}
