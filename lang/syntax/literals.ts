/**
 * Literal values shared by both parsers (the hand-written fast parser and the Ohm
 * semantics): integer literals and string escapes. No ohm-js here, so the fast path
 * loads without it.
 */

import { suggest } from "../suggest.ts";
import { UNITS } from "./keywords.ts";

const DIGITS: Record<string, { base: bigint; re: RegExp }> = {
  x: { base: 16n, re: /^[0-9a-fA-F]+$/ },
  b: { base: 2n, re: /^[01]+$/ },
  o: { base: 8n, re: /^[0-7]+$/ },
};

/** Parses an integer literal (decimal, 0x, 0b, 0o, `_` between digits); null if invalid. */
export function parseIntLiteral(raw: string): bigint | null {
  let body = raw;
  let base = 10n;
  let re = /^[0-9]+$/;
  if (raw.length > 1 && raw[0] === "0" && /[xXbBoO]/.test(raw[1])) {
    const d = DIGITS[raw[1].toLowerCase()];
    base = d.base;
    re = d.re;
    body = raw.slice(2);
  }
  // Underscores only between digits: no leading, trailing or doubled ones.
  if (body === "" || body.startsWith("_") || body.endsWith("_") || body.includes("__")) {
    return null;
  }
  body = body.replaceAll("_", "");
  if (!re.test(body)) return null;
  let v = 0n;
  for (const ch of body) v = v * base + BigInt(parseInt(ch, 16));
  return v;
}

/** A string literal's value: `\n` and `\t` are newline and tab; `\X` is X otherwise. */
export function decodeString(raw: string): string {
  const inner = raw.slice(1, -1);
  if (!inner.includes("\\")) return inner;
  return inner.replace(/\\(.)/gsu, (_m, c: string) => {
    switch (c) {
      case "n":
        return "\n";
      case "t":
        return "\t";
      default:
        return c; // \" \\ and anything else: the character itself
    }
  });
}

/** The unit a misspelt one most likely means: `mb`, `MB`, `Mib`, `M`, `gigs` → …; null if none. */
export function unitFor(word: string): string | null {
  const w = word.toLowerCase().replace(/s$/, "").replace(
    /^(kilo|kibi|mega|mebi|giga|gibi|tera|tebi)byte$/,
    (_, p: string) => p[0] + "b",
  );
  const first = ({ b: "B", k: "KiB", m: "MiB", g: "GiB", t: "TiB" } as Record<string, string>)[
    w[0]
  ];
  if (first && /^(?:b|byte|[kmgt]|[kmgt]i?b)$/.test(w)) return first;
  return suggest(word, UNITS.filter((u) => u !== "B"));
}
