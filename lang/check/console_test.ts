/** Console-like devices in the language: virtio_console, `output`, and who takes stdin. */
import { deepStrictEqual as eq } from "node:assert/strict";
import { compile, createMemoryHost, type Plan } from "../mod.ts";

const HOLE = "  pci_hole 0xC000_0000 .. 4 GiB { ecam 0xE000_0000 buses auto }\n";

function run(body: string) {
  const text = `machine m {\n  memory 128 MiB\n${body}  boot pvh "g.elf"\n}\n`;
  const host = createMemoryHost({ "d/m.vmdesc": text }, ["d/g.elf"]);
  const r = compile(text, { file: "d/m.vmdesc", host });
  return { codes: r.diagnostics.map((d) => d.code), plan: r.plans.get("m") as Plan | undefined };
}

/** [id, output, input] of every console-like entry of the Plan, devices then functions. */
function consoles(plan: Plan | undefined) {
  const kinds = new Set(["serial", "virtio_console"]);
  return [
    ...(plan?.devices ?? []).filter((d) => kinds.has(d.kind)).map((d) => [d.id, d.props]),
    ...(plan?.pci ?? []).filter((f) => kinds.has(f.kind)).map((f) => [f.bdf, f.props]),
  ].map(([id, p]) => {
    const props = p as Record<string, unknown>;
    return [id, props.output, props.input];
  });
}

Deno.test("virtio_console on both transports: IDs, queues, backing, output like a UART's", () => {
  const r = run(
    `${HOLE}  pci 00:05.0 virtio_console { output "stderr" }\n  device virtio_console hvc0 { output "logs/hvc0.txt" }\n`,
  );
  eq(r.codes, []); // no W0002: a virtio console is a console
  const fn = r.plan!.pci.find((f) => f.bdf === "00:05.0")!;
  eq([fn.vendor_id, fn.device_id, fn.class_code, fn.revision], [0x1af4, 0x1043, 0x078000, 1]);
  eq(fn.virtio?.device_type, 3);
  eq(fn.virtio?.queue_sizes, [256, 256]);
  eq(fn.virtio?.backing, { kind: "console" });
  eq(fn.virtio?.transport.kind === "pci" && fn.virtio.transport.msix.vectors, 3);
  const dev = r.plan!.devices.find((d) => d.id === "hvc0")!;
  eq(dev.virtio?.transport, { kind: "mmio", version: 2 });
  eq(dev.mmio.length, 1);
  // The first virtio console takes stdin in a machine without a serial port: devices first.
  eq(consoles(r.plan), [["hvc0", "logs/hvc0.txt", "stdin"], ["00:05.0", "stderr", "none"]]);
});

Deno.test("stdin: the first serial port by default, an explicit `input stdin` otherwise", () => {
  const serial = "  device serial com1 { port 0x3f8 }\n";
  eq(consoles(run(`${serial}  device virtio_console hvc0 {}\n`).plan), [
    ["com1", "stdout", "stdin"],
    ["hvc0", "stdout", "none"],
  ]);
  eq(consoles(run(`${serial}  device virtio_console hvc0 { input stdin }\n`).plan), [
    ["com1", "stdout", "none"],
    ["hvc0", "stdout", "stdin"],
  ]);
  // `input none` passes it on to the next console; nobody may end up with it.
  eq(
    consoles(
      run(`  device serial com1 { port 0x3f8 input none }\n${HOLE}  pci 00:05.0 virtio_console\n`)
        .plan,
    ),
    [["com1", "stdout", "none"], ["00:05.0", "stdout", "stdin"]],
  );
  eq(consoles(run(`  device serial com1 { port 0x3f8 input "none" }\n`).plan), [[
    "com1",
    "stdout",
    "none",
  ]]);
});

Deno.test("stdin: two claims are E0230 (each further claim), a bad value E0304", () => {
  const r = run(
    `  device serial com1 { port 0x3f8 input stdin }\n  device virtio_console hvc0 { input stdin }\n${HOLE}  pci 00:05.0 virtio_console { input stdin }\n`,
  );
  eq(r.codes, ["E0230", "E0230"]);
  eq(run("  device virtio_console hvc0 { input stdn }\n").codes, ["E0304"]);
  eq(run('  device virtio_console hvc0 { output "" }\n').codes, ["E0304"]);
});
