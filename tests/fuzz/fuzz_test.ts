/**
 * A few thousand seeded mutants of the examples and diagnostics cases: each must end in
 * diagnostics or Plans (no exception, no hang, spans inside their files, an idempotent
 * formatter) within the time limit (50 ms in process for compile, render and format; a
 * case over it fails and its input is saved under .cache/fuzz/). The seed is fixed so a
 * failure reproduces; `deno task fuzz --cases 100000` runs the long version with other
 * seeds.
 */
import { describe, fuzz, loadCorpus, saveCrashes } from "./mod.ts";
import { makeCase, tokens } from "./mutate.ts";

Deno.test("fuzz: mutants are deterministic per (seed, index)", async () => {
  const corpus = await loadCorpus();
  if (corpus.preferred < 6) {
    throw new Error(`expected the examples first in the corpus, got ${corpus.preferred}`);
  }
  for (const i of [0, 1, 77, 4096]) {
    const a = makeCase(corpus.texts, 7, i, corpus.preferred);
    const b = makeCase(corpus.texts, 7, i, corpus.preferred);
    if (a.text !== b.text || a.mutations.join() !== b.mutations.join()) {
      throw new Error(`case ${i} differs`);
    }
  }
  const t = tokens('let a = 0x1F_FF + "s" // c\n');
  if (t.map((k) => k.kind).join(",") !== "word,word,punct,number,punct,string,comment") {
    throw new Error(`lexer: ${JSON.stringify(t)}`);
  }
});

Deno.test("fuzz: 2000 mutants end in diagnostics or Plans", async () => {
  const corpus = await loadCorpus();
  const summary = await fuzz({
    seed: 20261125,
    cases: 2000,
    workers: 2,
    timeoutMs: 15_000,
    corpus,
  });
  console.log(describe(summary));
  if (summary.failures.length || summary.hangs.length) {
    const saved = await saveCrashes(summary, corpus);
    throw new Error(
      `fuzz found ${summary.failures.length} failures and ${summary.hangs.length} hangs; inputs: ${
        saved.join(", ")
      }`,
    );
  }
  // The mix must actually reach the later stages, not stop at syntax errors.
  if (summary.withPlans < 200) {
    throw new Error(`only ${summary.withPlans} mutants lowered to a Plan`);
  }
  if (summary.cases !== 2000) throw new Error(`ran ${summary.cases} cases`);
});

Deno.test("fuzz: a case over the time limit is a failure, and its input is saved", async () => {
  const corpus = await loadCorpus();
  // A limit no case can meet: every case must be reported slow, and saved.
  const summary = await fuzz({ seed: 7, cases: 3, workers: 1, limitMs: 0.0001, corpus });
  const slow = summary.failures.filter((f) => f.kind === "slow");
  if (slow.length !== 3) throw new Error(`expected 3 slow cases, got ${describe(summary)}`);
  if (!/took \d+ ms \(best of 3\)/.test(slow[0].message)) throw new Error(slow[0].message);
  const saved = await saveCrashes(summary, corpus);
  try {
    if (saved.length !== 3) throw new Error(`saved ${saved.length} inputs`);
    const root = new URL("../../", import.meta.url);
    const text = await Deno.readTextFile(new URL(saved[0], root));
    if (text !== makeCase(corpus.texts, 7, slow[0].index, corpus.preferred).text) {
      throw new Error("the saved input is not the case's text");
    }
  } finally {
    const root = new URL("../../", import.meta.url);
    for (const p of saved) await Deno.remove(new URL(p, root)).catch(() => {});
  }
});
