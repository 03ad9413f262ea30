import {
  compile,
  createMemoryHost,
  definitionAt,
  evaluateAt,
  machineSymbols,
  nodeAt,
  parse,
} from "./mod.ts";

function assert(c: unknown, m: string): asserts c {
  if (!c) throw new Error(m);
}

const COMMON = `let ecam = 0xE000_0000
machine base {
  memory 128 MiB
  device serial com1 { port 0x3f8 }
  boot pvh "g.elf"
}
`;
const MAIN = `import "common.vmdesc"
let half = ecam >> 1
machine big extends base {
  memory half + 64 MiB
  pci_hole 0xC000_0000 .. 4 GiB { ecam ecam buses auto }
  pci 00:02.0 virtio_rng
}
`;

function program() {
  const host = createMemoryHost({ "d/common.vmdesc": COMMON, "d/main.vmdesc": MAIN }, ["d/g.elf"]);
  return compile(MAIN, { file: "d/main.vmdesc", host }).program;
}

Deno.test("definitions and references of constants across imports", () => {
  const p = program();
  const use = MAIN.indexOf("ecam >> 1");
  const def = definitionAt(p, "d/main.vmdesc", use + 1)!;
  assert(def.kind === "let" && def.name === "ecam", JSON.stringify(def));
  assert(
    def.definition.file === "d/common.vmdesc" && def.definition.start === 4,
    "defined in common",
  );
  assert(
    def.uses.length === 2 && def.uses.every((u) => u.file === "d/main.vmdesc"),
    "two uses in main",
  );
  const m = definitionAt(p, "d/main.vmdesc", MAIN.indexOf("base {") + 1)!;
  assert(m.kind === "machine" && m.definition.file === "d/common.vmdesc", "extends base → common");
});

Deno.test("evaluateAt gives numbers and ranges for hover", () => {
  const p = program();
  const v = evaluateAt(p, "d/main.vmdesc", MAIN.indexOf("half + 64") + 1)!;
  assert(
    v.kind === "number" && v.value === 0x70000000n,
    JSON.stringify(v, (_k, x) => typeof x === "bigint" ? String(x) : x),
  );
  const sum = evaluateAt(p, "d/main.vmdesc", MAIN.indexOf("+ 64"))!;
  assert(
    sum.kind === "range" && sum.base === 0x70000000n && sum.size === 64n << 20n,
    "`a + b` as a range",
  );
  const r = evaluateAt(p, "d/main.vmdesc", MAIN.indexOf(".. 4 GiB"))!;
  assert(r.kind === "range" && r.base === 0xC0000000n && r.size === 0x40000000n, "range");
  const l = evaluateAt(p, "d/main.vmdesc", MAIN.indexOf("half =") + 1)!;
  assert(l.kind === "number" && l.value === 0x70000000n, "a let's name shows its value");
});

Deno.test("machineSymbols and nodeAt", () => {
  const p = program();
  const ms = machineSymbols(p, "d/main.vmdesc");
  assert(ms.length === 1 && ms[0].name === "big" && ms[0].base === "base", "big");
  assert(ms[0].pci[0].address === "00:02.0", "pci listed");
  const all = machineSymbols(p);
  assert(all.some((m) => m.name === "base" && m.devices[0].id === "com1"), "base with com1");
  const n = nodeAt(p.files.get("d/main.vmdesc")!.ast, MAIN.indexOf("virtio_rng") + 2);
  assert(n.kind === "Ident" && n.name === "virtio_rng", n.kind);
});

Deno.test("nodeAt: end-inclusive, and where siblings touch the one starting there wins", () => {
  // `(64)cpus` puts two settings edge to edge: the cursor between them is on `cpus`, as an
  // editor that just moved onto the word expects, not on the end of the first setting.
  const text = "machine m {\n  memory (64)cpus 2\n}\n";
  const { ast, diagnostics } = parse(text, "t.vmdesc");
  assert(diagnostics.length === 0, JSON.stringify(diagnostics));
  const at = text.indexOf("cpus");
  const n = nodeAt(ast, at);
  assert(n.kind === "Ident" && n.name === "cpus", `${n.kind} at the touching edge`);
  // Right after a word (the end of its span) still finds the word.
  const end = nodeAt(ast, text.indexOf("memory") + "memory".length);
  assert(end.kind === "Ident" && end.name === "memory", `${end.kind} right after a word`);
});
