/**
 * format(): examples are already canonical; formatting is idempotent and keeps every
 * comment and the meaning (same diagnostics, same Plans) on the corpus and on mutants;
 * it refuses to touch a file with syntax errors.
 */
import { compile, createMemoryHost, format } from "./mod.ts";
import { scanComments } from "./format.ts";
import { corpus, mutate, rng } from "../tests/lang_corpus.ts";

const EX = decodeURIComponent(new URL("../examples/", import.meta.url).pathname);

function check(text: string): string | null {
  const a = format(text, "t.vmdesc");
  if (a.diagnostics.length) return a.text === text ? null : "changed a file with syntax errors";
  const b = format(a.text, "t.vmdesc");
  if (b.text !== a.text || b.diagnostics.length) {
    return `not idempotent:\n${a.text}\n---\n${b.text}`;
  }
  const before = scanComments(text).map((c) => c.text.trim());
  const after = scanComments(a.text).map((c) => c.text.trim());
  if (before.join("\n") !== after.join("\n")) {
    return `comments changed: ${JSON.stringify(before)} → ${JSON.stringify(after)}`;
  }
  const host = createMemoryHost({}, ["guest.pvh"]);
  const r1 = compile(text, { file: "t.vmdesc", host });
  const r2 = compile(a.text, { file: "t.vmdesc", host });
  const sig = (r: typeof r1) =>
    JSON.stringify([r.diagnostics.map((d) => d.code + d.message), [...r.plans.values()]]);
  if (sig(r1) !== sig(r2)) return "formatting changed the meaning";
  return null;
}

Deno.test("examples are formatted", () => {
  for (const e of Deno.readDirSync(EX)) {
    if (!e.name.endsWith(".vmdesc")) continue;
    const text = Deno.readTextFileSync(EX + e.name);
    const out = format(text, e.name);
    if (out.text !== text) {
      throw new Error(`examples/${e.name} is not in canonical form:\n${out.text}`);
    }
  }
});

Deno.test("format is idempotent and keeps comments and meaning (corpus + mutants)", () => {
  const bad: string[] = [];
  const base = corpus();
  for (const t of base) {
    const why = check(t);
    if (why) bad.push(`${JSON.stringify(t.slice(0, 200))}: ${why}`);
  }
  const r = rng(424242);
  const small = base.filter((t) => t.length > 0 && t.length < 2500);
  for (let k = 0; k < 300 && bad.length < 3; k++) {
    let t = small[k % small.length];
    for (let m = 0; m < 1 + (k % 3); m++) t = mutate(t, r);
    const why = check(t);
    if (why) bad.push(`${JSON.stringify(t)}: ${why}`);
  }
  if (bad.length) throw new Error(bad.join("\n\n"));
});

Deno.test("canonical layout: indentation, spacing, blank lines, one-line bodies, comments", () => {
  const messy = `// top
let a=1   // one
let   b = ( a+2 )*3 GiB



/* block
 comment */ machine x extends   y { cpus 1 memory 2 GiB // trailing
  device serial com1 { port 0x3f8 /* inner */ irq 4 }
  device debug_exit {
  port 0xf4 }
  pci 00:02.0 virtio_rng {}
  pci_hole 0xC000_0000 .. 4 GiB { strategy trap ecam 0xE000_0000 buses 0 .. 255 }

  boot flat "x.bin" { load 0x100000 // where
  }
  // before close
}
`;
  const want = `// top
let a = 1 // one
let b = (a + 2) * 3 GiB

/* block
 comment */
machine x extends y {
  cpus 1
  memory 2 GiB // trailing
  device serial com1 {
    port 0x3f8 /* inner */
    irq 4
  }
  device debug_exit {
    port 0xf4
  }
  pci 00:02.0 virtio_rng
  pci_hole 0xC000_0000 .. 4 GiB { strategy trap ecam 0xE000_0000 buses 0..255 }

  boot flat "x.bin" {
    load 0x100000 // where
  }
  // before close
}
`;
  const got = format(messy).text;
  if (got !== want) throw new Error(`got:\n${got}`);
});

Deno.test("format refuses a file with a syntax error", () => {
  const text = "machine m {\n  memory\n}\n";
  const r = format(text, "bad.vmdesc");
  if (r.text !== text || r.diagnostics[0]?.code !== "E0001") throw new Error(JSON.stringify(r));
});
