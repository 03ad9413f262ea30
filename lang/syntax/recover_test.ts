/**
 * Error recovery (recover.ts): a broken text is read as its author most likely meant it,
 * and what parsed is kept, so the checker still sees it. The diagnostics of whole files
 * are in tests/diagnostics/cases/E0001-*.vmdesc; these tests look at the trees.
 */
import type * as A from "../ast.ts";
import { parse } from "../parse.ts";
import { recoverParse } from "./recover.ts";
import { compile, createMemoryHost } from "../mod.ts";

function eq(a: unknown, b: unknown, what: string) {
  const big = (_k: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v);
  const sa = JSON.stringify(a, big);
  const sb = JSON.stringify(b, big);
  if (sa !== sb) throw new Error(`${what}:\n got  ${sa}\n want ${sb}`);
}

function machine(text: string): A.Machine {
  const m = parse(text, "r.vmdesc").ast.items.find((i) => i.kind === "Machine");
  if (!m || m.kind !== "Machine") throw new Error(`no machine in ${JSON.stringify(text)}`);
  return m;
}

/** Settings as `name` (props) or their kind, in order. */
function names(m: A.Machine): string[] {
  return m.settings.map((s) => s.kind === "Prop" ? s.name.name : s.kind);
}

Deno.test("recovery: a unit typo is read as the unit; the machine is recovered, nothing lost", () => {
  for (const typo of ["MB", "mb", "M", "Mib", "mib", "megabytes"]) {
    const m = machine(`machine m {\n  memory 256 ${typo}\n  cpus 2\n}\n`);
    const mem = m.settings[0] as A.Prop;
    eq(mem.value.kind === "Sized" && mem.value.unit, "MiB", typo);
    eq(names(m), ["memory", "cpus"], `${typo}: cpus is still a setting`);
    eq([m.recovered, m.lost], [true, []], `${typo}: recovered, nothing skipped`);
  }
  // Only a word on the number's line that nothing else can follow is a unit.
  const m = machine("machine m {\n  cpus 2\n  m 3\n  x = 1\n}\n");
  eq(names(m), ["cpus", "m", "x"], "`m 3` on its own line is a setting");
});

Deno.test("recovery: a broken setting is skipped to the next line that can start one", () => {
  const m = machine(`machine m {
  memory
  device serial com1 { port 0x3f8 irq }
  cpus 2 +
    3 4
  pci 00:02.0 virtio_rng
  % garbage ( [
  boot pvh "g.elf"
}
`);
  // `cpus 2 +` goes on on the next line (an expression may), and `4` is what breaks it.
  eq(names(m), ["Device", "cpus", "Pci", "Boot"], "kept");
  const dev = m.settings[0] as A.Device;
  eq(dev.body?.map((b) => b.kind === "Prop" && b.name.name), ["port"], "the device keeps port");
  eq(m.lost?.length, 4, "memory, irq, `4`, the garbage line");
});

Deno.test("recovery: an unclosed { ends where indentation says; a ) closes it when it stands there", () => {
  const m = machine(`machine m {
  device serial com1 { port 0x3f8
  boot pvh "g.elf" { cmdline "x" )
  cpus 2
}
`);
  eq(names(m), ["Device", "Boot", "cpus"], "three settings");
  const boot = m.settings[1] as A.Boot;
  eq(boot.body?.length, 1, "the boot block holds cmdline");
  // A valid but flat-indented block in a broken machine keeps its own `}`.
  const flat = machine(`machine m {
device serial com1 {
port 0x3f8
}
memory = 1 GiB
}
`);
  eq(names(flat), ["Device", "memory"], "flat blocks");
  eq((flat.settings[0] as A.Device).body?.length, 1, "port stays in the device");
});

Deno.test("recovery: - in a name, = after a name, a misspelt keyword", () => {
  const text = `machine m {
  pci 00:02.0 virtio-net
  cmd-line = "x"
  devcie serial com1 { port 0x3f8 }
  boto pvh "g.elf"
}
`;
  const m = machine(text);
  eq(names(m), ["Pci", "cmd_line", "Device", "Boot"], "read as meant");
  eq((m.settings[0] as A.Pci).deviceKind.name, "virtio_net", "kind");
  eq(m.settings[2].span.start, text.indexOf("devcie"), "the device's span starts at the typo");
});

Deno.test("recovery: a let that does not parse keeps its name, without a value", () => {
  const r = parse("let a = 1 +\nlet b = a\nlet c = ((\nlet d = 4\n", "r.vmdesc");
  eq(
    r.ast.items.map((i) => i.kind === "Let" ? [i.name.name, i.value !== null] : i.kind),
    [["a", false], ["b", true], ["c", false], ["d", true]],
    "lets",
  );
  // Their uses are quiet: the errors are the two syntax errors.
  const host = createMemoryHost({}, ["g.elf"]);
  const text =
    'let a = 1 +\nmachine m {\n  memory a\n  device serial c { port a }\n  boot pvh "g.elf"\n}\n';
  eq(compile(text, { file: "r.vmdesc", host }).diagnostics.map((d) => d.code), ["E0001"], "quiet");
});

Deno.test("recovery: never throws, and linear on nesting it gives up on", () => {
  for (
    const t of [
      "{".repeat(10000),
      "machine m {" + "(".repeat(10000),
      "let a = " + "(".repeat(10000) + "1" + ")".repeat(10000),
      "machine m { /*",
      'machine m { cmdline "',
      "machine",
      "machine m extends",
      "}}}}",
      "machine m {\n  device a {\n    device b {\n",
    ]
  ) {
    const r = recoverParse(t, "r.vmdesc");
    if (!Array.isArray(r.items)) throw new Error("items");
  }
  const deep = parse("let a = " + "(".repeat(600) + "1" + ")".repeat(600) + "\nlet b = 2\n", "r");
  eq(deep.diagnostics.map((d) => d.code), ["E0001"], "too deep, reported once");
  eq(deep.ast.items.map((i) => i.kind === "Let" && i.name.name), ["a", "b"], "b is kept");
});
