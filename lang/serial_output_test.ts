/**
 * The serial `output` property in the Plan: streams kept by name, file paths relative to
 * the file that declares the device, re-expressed from the main file like boot paths.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { compile, createMemoryHost } from "./mod.ts";

function outputs(files: Record<string, string>, main: string): unknown {
  const host = createMemoryHost(files, ["lib/g.elf", "a/g.elf"]);
  const r = compile(files[main], { file: main, host });
  const plan = [...r.plans.values()].at(-1);
  return {
    codes: r.diagnostics.map((d) => d.code),
    out: plan?.devices.filter((d) => d.kind === "serial").map((d) => [d.id, d.props.output]),
  };
}

Deno.test("serial output: streams by name, files relative to the declaring file", () => {
  const main = `machine m {
  memory 64 MiB
  device serial com1 { port 0x3f8 }
  device serial com2 { port 0x2f8 output "stderr" }
  device serial com3 { port 0x3e8 irq 5 output "null" }
  device serial com4 { port 0x2e8 irq 6 output "logs/com4.txt" }
  boot pvh "g.elf"
}
`;
  eq(outputs({ "a/m.vmdesc": main }, "a/m.vmdesc"), {
    codes: [],
    out: [["com1", "stdout"], ["com2", "stderr"], ["com3", "null"], ["com4", "logs/com4.txt"]],
  });
});

Deno.test("serial output: a path from an imported file elsewhere is rebased on the main file", () => {
  const base = `machine base {
  memory 64 MiB
  device serial com1 { port 0x3f8 output "out/serial.txt" }
  device serial com2 { port 0x2f8 output "/var/log/abs.txt" }
  boot pvh "g.elf"
}
`;
  const main = `import "../../lib/base.vmdesc"
machine m extends base { cpus 2 }
`;
  eq(outputs({ "lib/base.vmdesc": base, "a/b/main.vmdesc": main }, "a/b/main.vmdesc"), {
    codes: [],
    out: [["com1", "../../lib/out/serial.txt"], ["com2", "/var/log/abs.txt"]],
  });
});

Deno.test("serial output: an empty output is E0304", () => {
  const main = `machine m {
  memory 64 MiB
  device serial com1 { port 0x3f8 output "" }
  boot pvh "g.elf"
}
`;
  const { codes } = outputs({ "a/m.vmdesc": main }, "a/m.vmdesc") as { codes: string[] };
  eq(codes, ["E0304"]);
});
