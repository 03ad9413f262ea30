import { createIncrementalParser, parse } from "./parse.ts";
import type * as A from "./ast.ts";
import { children } from "./ast.ts";

function assert(c: unknown, m: string): asserts c {
  if (!c) throw new Error(m);
}

const SRC = `import "common.vmdesc"
let base = 0xE000_0000 // ECAM
machine m extends b {
  memory 4 GiB + 1 GiB
  pci_hole 0xC000_0000 .. 4 GiB { ecam base buses auto }
  device serial com1 { port 0x3f8 irq 4 }
  pci 00:02.0 generic { bar 2 mem64 1 MiB prefetchable vendor 1 device 2 }
  cpuid { hide cx16 }
  boot pvh "a.elf" { cmdline "x" }
}
`;

Deno.test("every node's span covers its children and matches its text", () => {
  const { ast, diagnostics } = parse(SRC, "f.vmdesc");
  assert(diagnostics.length === 0, "parses");
  const walk = (n: A.Node) => {
    assert(n.span.file === "f.vmdesc", "file in span");
    for (const c of children(n)) {
      assert(
        c.span.start >= n.span.start && c.span.end <= n.span.end,
        `${c.kind} inside ${n.kind}`,
      );
      walk(c);
    }
    if (n.kind === "Number" || n.kind === "String") {
      assert(SRC.slice(n.span.start, n.span.end) === n.raw, "raw text");
    }
    if (n.kind === "Ident" || n.kind === "Name") {
      assert(SRC.slice(n.span.start, n.span.end) === n.name, "name text");
    }
  };
  walk(ast);
  const m = ast.items[2] as A.Machine;
  assert(
    SRC.slice(m.span.start, m.span.end).startsWith("machine m") &&
      SRC.slice(m.span.start, m.span.end).endsWith("}"),
    "machine span",
  );
  const mem = m.settings[0] as A.Prop;
  assert(
    mem.value.kind === "Range" && mem.value.form === "plus",
    "`a + b` after memory is a plus-range",
  );
});

Deno.test("syntax errors: E0001 with expected tokens in words at the failure position", () => {
  const text = "machine m {\n  cpus\n}\n";
  const r = parse(text, "e.vmdesc");
  assert(r.diagnostics.length === 1, "one error");
  const d = r.diagnostics[0];
  assert(d.code === "E0001" && /expected a value/.test(d.message), d.message);
  assert(text.slice(d.span!.start, d.span!.end) === "}", "span on the offending token");
  const num = parse("let 9x = 1", "e.vmdesc").diagnostics[0];
  assert(/expected a name/.test(num.message), num.message);
});

Deno.test("the parser never throws, whatever the input", () => {
  const inputs = [
    "",
    "{",
    "}",
    "machine",
    "machine m {",
    '"',
    "/*",
    "let a = (((",
    "\u0000\u00ff\u{1F600}",
    "pci 00:",
    "machine m { pci 00:02.0 }",
  ];
  for (const t of inputs) {
    const r = parse(t, "x");
    assert(r.ast.kind === "Program", "always a Program");
  }
});

Deno.test("incremental parser: edits give the same tree as a fresh parse", () => {
  const p = createIncrementalParser("i.vmdesc", SRC);
  assert(p.parse().diagnostics.length === 0, "initial parse");
  const at = SRC.indexOf("4 GiB + 1 GiB");
  p.update(at, at + 1, "8");
  const after = SRC.slice(0, at) + "8" + SRC.slice(at + 1);
  assert(p.text() === after, "text follows edits");
  const big = (_k: string, v: unknown) => (typeof v === "bigint" ? String(v) : v);
  assert(
    JSON.stringify(p.parse(), big) === JSON.stringify(parse(after, "i.vmdesc"), big),
    "same as fresh",
  );
  // Break it, then fix it again.
  const cut = after.indexOf("0x3f8");
  p.update(cut, cut + 5, "");
  const broken = p.parse();
  assert(broken.diagnostics[0]?.code === "E0001", "broken after deleting a value");
  p.update(cut, cut, "0x3f8");
  assert(p.parse().diagnostics.length === 0, "fixed again");
  p.setText("let a = 1\n");
  assert(p.parse().ast.items.length === 1, "setText");
});

Deno.test("a misspelt unit gets a hint, a label and a fix", () => {
  const text = "machine m {\n  memory 128 Mib\n  device serial com1 { port 0x3f8 }\n}\n";
  const d = parse(text, "u.vmdesc").diagnostics[0];
  assert(d.code === "E0001" && /did you mean `MiB`/.test(d.hint ?? ""), d.hint ?? "");
  const fix = d.fixes?.[0];
  assert(
    fix && text.slice(fix.span.start, fix.span.end) === "Mib" && fix.replacement === "MiB",
    "fix replaces the word",
  );
  const eq = parse("machine m { memory = 1 GiB }", "u.vmdesc").diagnostics[0];
  assert(/no `=`/.test(eq.hint ?? ""), eq.hint ?? "");
});
