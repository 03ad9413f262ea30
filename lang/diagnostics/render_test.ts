import type { Diagnostic } from "./types.ts";
import {
  dedupe,
  jsonReport,
  lineStarts,
  loadWidths,
  positionAt,
  renderDiagnostic,
  renderDiagnostics,
  renderSummary,
} from "./render.ts";

// The renderer at work with every width known (widths_test.ts covers the ASCII-only path).
await loadWidths();

function assertEquals(actual: unknown, expected: unknown, msg = "") {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg}\nexpected: ${e}\nactual:   ${a}`);
}

function assertText(actual: string, expected: string) {
  if (actual !== expected) {
    throw new Error(`rendered text differs\n--- expected\n${expected}\n--- actual\n${actual}`);
  }
}

const diag = (d: Partial<Diagnostic>): Diagnostic => ({
  code: "E0201",
  severity: "error",
  message: "overlapping regions",
  span: null,
  labels: [],
  hint: null,
  ...d,
});

Deno.test("positions: 1-based, CRLF and lone CR end lines, columns count code points", () => {
  const text = "ab\r\ncd\ref\n😀x";
  assertEquals(lineStarts(text), [0, 4, 7, 10]);
  assertEquals(positionAt(text, 0), { line: 1, column: 1 });
  assertEquals(positionAt(text, 5), { line: 2, column: 2 });
  assertEquals(positionAt(text, 8), { line: 3, column: 2 });
  // "x" after an astral emoji (two UTF-16 units) is column 2.
  assertEquals(positionAt(text, 12), { line: 4, column: 2 });
  // Out-of-range offsets clamp instead of throwing.
  assertEquals(positionAt(text, 999), { line: 4, column: 3 });
  assertEquals(positionAt(text, -5), { line: 1, column: 1 });
});

const src = [
  "machine m {",
  "  ram 0 .. 2 GiB",
  "\tram 1 GiB + 2 GiB",
  "  pci_hole 0xC000_0000 .. 4 GiB {",
  "    strategy shadow",
  "  }",
  "}",
  "",
].join("\n");
const other = "let base = 1\n";
const files: Record<string, string> = { "m.vmdesc": src, "lib/c.vmdesc": other };
const lookup = (f: string) => files[f];
const at = (s: string, len = s.length, file = "m.vmdesc") => {
  const start = files[file].indexOf(s);
  if (start < 0) throw new Error(`no ${s}`);
  return { file, start, end: start + len };
};

Deno.test("human: primary caret, tab expansion, secondary labels, help", () => {
  const d = diag({
    span: at("ram 1 GiB + 2 GiB"),
    labels: [
      { span: at("ram 1 GiB + 2 GiB"), message: "this range" },
      { span: at("ram 0 .. 2 GiB"), message: "overlaps this one" },
    ],
    hint: "make the ranges disjoint",
  });
  assertText(
    renderDiagnostic(d, lookup),
    [
      "error[E0201]: overlapping regions",
      " --> m.vmdesc:3:2",
      "  |",
      "2 |   ram 0 .. 2 GiB",
      "  |   -------------- overlaps this one",
      "3 |     ram 1 GiB + 2 GiB",
      "  |     ^^^^^^^^^^^^^^^^^ this range",
      "  |",
      "  = help: make the ranges disjoint",
      "",
    ].join("\n"),
  );
});

Deno.test("human: multi-line span, label in another file, span-less diagnostic", () => {
  const hole = at("pci_hole");
  const d = diag({
    span: { file: "m.vmdesc", start: hole.start, end: src.indexOf("  }\n}") + 3 },
    labels: [{ span: at("base", 4, "lib/c.vmdesc"), message: "defined here" }],
  });
  assertText(
    renderDiagnostic(d, lookup),
    [
      "error[E0201]: overlapping regions",
      " --> m.vmdesc:4:3",
      "  |",
      "4 |   pci_hole 0xC000_0000 .. 4 GiB {",
      "  |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
      "5 |     strategy shadow",
      "  |     ^^^^^^^^^^^^^^^",
      "6 |   }",
      "  |   ^",
      "  |",
      " ::: lib/c.vmdesc:1:5",
      "  |",
      "1 | let base = 1",
      "  |     ---- defined here",
      "  |",
      "",
    ].join("\n"),
  );
  assertText(
    renderDiagnostic(
      diag({ code: "E0105", message: "no machine 'x'", hint: "machines: m" }),
      lookup,
    ),
    "error[E0105]: no machine 'x'\n  = help: machines: m\n",
  );
});

Deno.test("human: an empty span at the end of the file points after the last line", () => {
  const text = "machine m {\n  cpus 1\n";
  const d = diag({
    code: "E0001",
    message: "expected '}'",
    span: { file: "e", start: text.length, end: text.length },
  });
  assertText(
    renderDiagnostic(d, () => text),
    "error[E0001]: expected '}'\n --> e:2:9\n  |\n2 |   cpus 1\n  |         ^\n  |\n",
  );
});

Deno.test("human: control characters are shown as pictures, not sent to the terminal", () => {
  const text = "let a = \x1b[31m1\n";
  const d = diag({ code: "E0001", message: "bad", span: { file: "c", start: 8, end: 9 } });
  const out = renderDiagnostic(d, () => text);
  if (out.includes("\x1b")) throw new Error("escape byte leaked:\n" + out);
  if (!out.includes("\u241b[31m1")) throw new Error("control picture missing:\n" + out);
});

Deno.test("human: colors only when asked", () => {
  const d = diag({ span: at("ram 0 .. 2 GiB"), hint: "x" });
  if (renderDiagnostics([d], lookup).includes("\x1b[")) throw new Error("color without asking");
  if (!renderDiagnostics([d], lookup, { color: true }).includes("\x1b[1;31m")) {
    throw new Error("no color");
  }
});

Deno.test("summary line counts errors and warnings", () => {
  const w = diag({ code: "W0002", severity: "warning", message: "no serial" });
  assertEquals(renderSummary([diag({}), diag({}), w]), "error: 2 errors, 1 warning emitted\n");
  assertEquals(renderSummary([w]), "warning: 1 warning emitted\n");
  assertEquals(renderSummary([]), "");
});

Deno.test("JSON: versioned report, 1-based exclusive ranges, labels, repeats removed", () => {
  const d = diag({
    span: at("ram 0 .. 2 GiB"),
    labels: [{ span: at("base", 4, "lib/c.vmdesc"), message: "here" }],
    hint: "h",
    fixes: [{ title: "t", span: at("ram"), replacement: "memory" }],
  });
  const report = jsonReport(
    [
      { path: "m.vmdesc", diagnostics: [d], machines: [] },
      { path: "n.vmdesc", diagnostics: [d], machines: ["n"] },
    ],
    lookup,
  );
  assertEquals(report.version, 1);
  assertEquals(report.valid, false);
  assertEquals(report.error_count, 1, "deduplicated");
  assertEquals(report.files.map((f) => [f.path, f.valid, f.machines]), [
    ["m.vmdesc", false, []],
    ["n.vmdesc", false, ["n"]],
  ]);
  const j = report.diagnostics[0];
  assertEquals(j.range, { start: { line: 2, column: 3 }, end: { line: 2, column: 17 } });
  assertEquals(j.title, "overlapping regions");
  assertEquals(j.labels, [{
    file: "lib/c.vmdesc",
    range: { start: { line: 1, column: 5 }, end: { line: 1, column: 9 } },
    message: "here",
  }]);
  assertEquals(j.fixes[0].replacement, "memory");
  assertEquals(dedupe([d, d, diag({})]).length, 2);
});

Deno.test("human: labels left of the primary on the same line hang below their marks", () => {
  const text = "  a = 1 b = 2 c = 3\n";
  const span = (s: string) => ({
    file: "x",
    start: text.indexOf(s),
    end: text.indexOf(s) + s.length,
  });
  const d = diag({
    span: span("c = 3"),
    labels: [{ span: span("a = 1"), message: "first" }, { span: span("b = 2"), message: "second" }],
  });
  assertText(
    renderDiagnostic(d, () => text),
    [
      "error[E0201]: overlapping regions",
      " --> x:1:15",
      "  |",
      "1 |   a = 1 b = 2 c = 3",
      "  |   ----- ----- ^^^^^",
      "  |   |     |",
      "  |   |     second",
      "  |   |",
      "  |   first",
      "  |",
      "",
    ].join("\n"),
  );
});

Deno.test("human: a very long line is cut to a window around its mark", () => {
  const text = "let a = " + "1 + ".repeat(200) + "x + " + "1 + ".repeat(200) + "1\n";
  const at = text.indexOf("x");
  const out = renderDiagnostic(
    diag({ code: "E0101", message: "no x", span: { file: "l", start: at, end: at + 1 } }),
    () => text,
  );
  const lines = out.split("\n");
  const src = lines.find((l) => l.startsWith("1 |"))!;
  const marks = lines[lines.indexOf(src) + 1];
  if (src.length > 160) throw new Error(`line not cut (${src.length} chars)`);
  if (!src.includes("...") || src[marks.indexOf("^")] !== "x") {
    throw new Error(`caret not under x:\n${src}\n${marks}`);
  }
});

Deno.test("human: the caret sits under its span after wide characters, emoji and marks", async () => {
  const { compile } = await import("../mod.ts");
  const { createMemoryHost } = await import("../host_memory.ts");
  // The case of issue 14, through the compiler: the syntax error is at `bogus`.
  const src = "/* 🚀🚀 */ bogus\n";
  const r = compile(src, { file: "w.vmdesc", host: createMemoryHost() });
  const e = r.diagnostics.find((d) => d.code === "E0001");
  if (!e || !e.span) throw new Error("expected E0001 at bogus");
  const out = renderDiagnostic(e, () => src);
  const caretLine = out.split("\n").find((l) => l.includes("^"))!;
  // "/* " 3 + two wide rockets 4 + " */ " 4 = column 11 (0-based) of the source text.
  assertEquals(caretLine.indexOf("^") - caretLine.indexOf("|") - 2, 11, out);

  // Each prefix is followed by `x`; the number is the columns a terminal gives the prefix.
  const cases: [string, number][] = [
    ["🚀", 2], // U+1F680: emoji presentation, East Asian Wide
    ["👨‍👩‍👧", 2], // ZWJ family: one glyph
    ["🇫🇷", 2], // a flag: two regional indicators, one glyph
    ["👍🏽", 2], // emoji + skin tone modifier
    ["❤️", 2], // text-default heart + VS16: emoji presentation
    ["e\u0301", 1], // e + combining acute: one cell
    ["日本", 4], // CJK ideographs
    ["ｶ", 1], // halfwidth katakana
    ["\u200b", 0], // zero width space
  ];
  for (const [prefix, width] of cases) {
    const text = `${prefix}x\n`;
    const d = diag({ span: { file: "u", start: prefix.length, end: prefix.length + 1 } });
    const rendered = renderDiagnostic(d, () => text);
    const line = rendered.split("\n").find((l) => l.includes("^"))!;
    assertEquals(line.indexOf("^") - line.indexOf("|") - 2, width, `after ${prefix}\n${rendered}`);
  }
});

Deno.test("human: a long line is cut by display columns, never through a character", () => {
  const text = "🚀".repeat(100) + " bad " + "日".repeat(100) + "\n";
  const start = text.indexOf("bad");
  const d = diag({ span: { file: "l", start, end: start + 3 } });
  const out = renderDiagnostic(d, () => text);
  const lines = out.split("\n");
  const src = lines.find((l) => l.includes("bad"))!;
  const caret = lines.find((l) => l.includes("^"))!;
  if (src.includes("\ufffd")) throw new Error("a character was cut in two:\n" + out);
  // The caret is under `bad` in display columns: count the columns before it in `src`.
  const before = src.slice(0, src.indexOf("bad"));
  let cols = 0;
  for (const ch of before) cols += ch === "🚀" || ch === "日" ? 2 : 1;
  assertEquals(caret.indexOf("^"), cols, out);
});
