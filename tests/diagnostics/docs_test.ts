/**
 * docs/diagnostics.md covers exactly the code table: every code has a `## CODE: title`
 * section whose title matches codes.ts, and every such section is a known code.
 */
import { CODES, isKnownCode } from "../../plan/codes.ts";
import { DOC_URL, sections } from "../../host/explanations.ts";
import { normalizeCode } from "../../cli/explain.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const doc = sections(await Deno.readTextFile(DOC_URL));

Deno.test("every code has a section in docs/diagnostics.md with its title", () => {
  const missing = Object.keys(CODES).filter((c) => !doc.has(c));
  assert(missing.length === 0, `codes without a section: ${missing.join(", ")}`);
  for (const [code, info] of Object.entries(CODES)) {
    const title = doc.get(code)!.title;
    assert(
      title === info.title,
      `${code}: docs title "${title}" != codes.ts title "${info.title}"`,
    );
  }
});

Deno.test("every section of docs/diagnostics.md is a known code", () => {
  const unknown = [...doc.keys()].filter((c) => !isKnownCode(c));
  assert(unknown.length === 0, `sections for unknown codes: ${unknown.join(", ")}`);
});

Deno.test("every section explains: an example block and a fix", () => {
  for (const [code, s] of doc) {
    assert(/```(vmdesc|sh)\n[\s\S]+?```/.test(s.text), `${code}: no example block`);
    assert(/\*\*Fix:\*\*/.test(s.text), `${code}: no **Fix:** paragraph`);
  }
});

Deno.test("explain accepts loose spellings of a code", () => {
  assert(normalizeCode("e201") === "E0201", "e201");
  assert(normalizeCode("0201") === "E0201", "0201");
  assert(normalizeCode("w2") === "W0002", "w2");
  assert(normalizeCode("E0201") === "E0201", "E0201");
});

Deno.test("docs examples are the case files and what check prints for them", async () => {
  const { caseExamples, syncDocs } = await import("./docs_sync.ts");
  const md = await Deno.readTextFile(DOC_URL);
  const examples = await caseExamples();
  assert(examples.size > 0, "no case files found");
  const synced = syncDocs(md, examples);
  assert(
    synced === md,
    "docs/diagnostics.md examples are out of date: run `deno run -A tests/diagnostics/docs_sync.ts` and review",
  );
  for (const code of examples.keys()) {
    assert(doc.get(code)?.text.includes("```text\n"), `${code}: no rendered output in its section`);
  }
});
