/** Minimal assertions (no jsr:@std here): deep equality through canonical JSON. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function canon(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b)))
        : typeof x === "bigint"
        ? x.toString()
        : x,
  );
}

export function assertEquals(actual: unknown, expected: unknown, msg?: string) {
  const a = canon(actual);
  const e = canon(expected);
  if (a !== e) {
    throw new Error(`${msg ? msg + ": " : ""}values differ\n  actual:   ${a}\n  expected: ${e}`);
  }
}
