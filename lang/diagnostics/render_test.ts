import type { Diagnostic } from "./types.ts";
import {
  dedupe,
  jsonReport,
  lineStarts,
  positionAt,
  renderDiagnostic,
  renderDiagnostics,
  renderSummary,
} from "./render.ts";

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
