/** Which console gets stdin, as the runtime reads the Plan; a Plan naming two is E1050. */
import assert from "node:assert/strict";
import type { Plan } from "../../plan/types.ts";
import { compile, createMemoryHost } from "../../lang/mod.ts";
import { consoleEntries, stdinOwner } from "../../runtime/io/consoles.ts";
import { createMachine } from "../../runtime/mod.ts";
import { RuntimeError } from "../../runtime/errors.ts";

function lowered(body: string): Plan {
  const text =
    `machine m {\n  memory 64 MiB\n  pci_hole 0xC000_0000 .. 4 GiB { ecam 0xE000_0000 buses auto }\n${body}  boot pvh "g.elf"\n}\n`;
  const r = compile(text, {
    file: "m.vmdesc",
    host: createMemoryHost({ "m.vmdesc": text }, ["g.elf"]),
  });
  assert.deepEqual(r.diagnostics.map((d) => d.code), []);
  return r.plans.get("m")!;
}

Deno.test("consoles: serial ports and virtio consoles, PCI functions by BDF", () => {
  const p = lowered(
    "  device serial com1 { port 0x3f8 }\n  pci 00:05.0 virtio_console { input stdin }\n  device virtio_console hvc0 {}\n",
  );
  assert.deepEqual(consoleEntries(p).map((c) => [c.id, c.kind]), [
    ["com1", "serial"],
    ["hvc0", "virtio_console"],
    ["00:05.0", "virtio_console"],
  ]);
  assert.equal(stdinOwner(p), "00:05.0");
});

Deno.test("consoles: a Plan without `input` anywhere gives stdin to its first serial port", () => {
  const p = lowered("  device serial com1 { port 0x3f8 }\n  device serial com2 { port 0x2f8 }\n");
  for (const d of p.devices) delete d.props.input;
  assert.equal(stdinOwner(p), "com1");
  const none = lowered("  device serial com1 { port 0x3f8 input none }\n");
  assert.equal(stdinOwner(none), null);
});

Deno.test("consoles: two owners are E1050, before a machine is built", async () => {
  const p = lowered("  device serial com1 { port 0x3f8 }\n  pci 00:05.0 virtio_console\n");
  p.pci[0].props.input = "stdin";
  assert.throws(() => stdinOwner(p), (e) => e instanceof RuntimeError && e.code === "E1050");
  await assert.rejects(
    createMachine(p, { fromCompiler: true, stdin: "x" }),
    (e) => e instanceof RuntimeError && e.code === "E1050" && /com1 and 00:05\.0/.test(e.message),
  );
});
