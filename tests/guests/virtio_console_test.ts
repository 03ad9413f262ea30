/**
 * The virtio-console guest (examples/guests/virtio_console.c) on vmdesc, over the modern
 * PCI transport (MSI-X) and virtio-mmio (an IOAPIC line): it prints through the console,
 * echoes its input until ^D, and the device's output is routed apart from the serial
 * port's. Input comes before the guest has receive buffers (the device holds it) and
 * after the guest sleeps waiting for it (an interrupt wakes it); through the library's
 * `stdin` and through `vmdesc boot` with a pipe and on a terminal (the size it offers).
 * (virtio_console_qemu_test.ts runs the same guest under QEMU microvm.)
 */
import assert from "node:assert/strict";
import { kvmTest } from "./boot.ts";
import { compile, type Plan } from "../../lang/mod.ts";
import { DenoHost } from "../../host/disk_host.ts";
import { createMachine, type RunResult } from "../../runtime/mod.ts";
import { buildGuests } from "../../examples/guests/build.ts";
import { typeOnTerminal } from "../util/terminal.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const VMDESC = ROOT + "examples/guests/virtio.vmdesc";

const INPUT = "hello console\nsecond line that is longer than sixteen bytes\n";
const EOT = "\x04";

const CASES = [
  { machine: "console_pci", transport: "pci", wait: "msix", id: "00:05.0" },
  { machine: "console_mmio", transport: "mmio", wait: "intx", id: "hvc0" },
];

function plan(machine: string, cmdline = ""): Plan {
  const host = new DenoHost();
  const r = compile(host.readFile(VMDESC)!, { file: VMDESC, host, machine, cmdline });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => `${d.code} ${d.message}`).join("; "));
  return r.plans.get(machine)!;
}

/** Boots with `stdin`; what each device wrote, by id. */
async function boot(
  p: Plan,
  stdin: string | ((out: () => Record<string, string>) => ReadableStream<Uint8Array>),
): Promise<{ result: RunResult; out: Record<string, string>; warnings: string[] }> {
  await buildGuests(["virtio-console"]);
  const out: Record<string, string> = {};
  const warnings: string[] = [];
  const dec = new TextDecoder();
  const m = await createMachine(p, {
    serial: (bytes, id) => out[id] = (out[id] ?? "") + dec.decode(bytes),
    stdin: typeof stdin === "string" ? stdin : stdin(() => out),
    warn: (w) => warnings.push(w),
    fromCompiler: true,
  });
  try {
    return { result: await m.run({ timeout: 30 }), out, warnings };
  } finally {
    m.close();
  }
}

function expectedConsole(transport: string, wait: string, echoed: string): string {
  return `virtio-console: hello from the guest over ${transport} ${wait}\n` +
    "virtio-console: no size\n" + // not a terminal: F_SIZE is not offered
    "virtio-console: emergency write\n" +
    "virtio-console: echo until ^D\n" + echoed + "virtio-console: bye\n";
}

for (const c of CASES) {
  kvmTest(
    `virtio-console on vmdesc: ${c.transport}, input held before the guest reads`,
    async () => {
      // The input is there at once; the guest gives 16-byte buffers one at a time.
      const { result, out, warnings } = await boot(plan(c.machine, "rx=16"), INPUT + EOT);
      assert.equal(out[c.id], expectedConsole(c.transport, c.wait, INPUT), JSON.stringify(out));
      assert.match(
        out.com1,
        new RegExp(
          `virtio-console: ${c.transport} ${c.wait} echoed ${INPUT.length} bytes in 4 buffers`,
        ),
      );
      assert.match(out.com1, /virtio-console: all ok/);
      assert.equal(result.exitStatus, 1, result.message);
      assert.deepEqual(warnings, []);
      const dev = result.stats.devices.find((d) => d.id === c.id)!;
      assert.equal(dev.model.rx_bytes, INPUT.length + 1);
      assert.equal(dev.model.rx_held, 0);
      assert.equal(dev.model.rx_dropped, 0);
      assert.equal(dev.model.emerg_bytes, "virtio-console: emergency write\n".length);
      assert.ok(!Object.keys(dev.model).some((k) => k.startsWith("fault_")), "no faults");
    },
  );

  kvmTest(`virtio-console on vmdesc: ${c.transport}, typed input wakes the guest`, async () => {
    const enc = new TextEncoder();
    const { result, out } = await boot(
      plan(c.machine, "rx=64"),
      (seen) =>
        new ReadableStream<Uint8Array>({
          async start(ctl) {
            // Type only once the guest sleeps waiting for input, a piece at a time.
            while (!(seen()[c.id] ?? "").includes("echo until ^D")) await delay(20);
            for (const piece of ["hel", "lo\n", "again\n", EOT]) {
              await delay(50);
              ctl.enqueue(enc.encode(piece));
            }
            ctl.close();
          },
        }),
    );
    assert.equal(out[c.id], expectedConsole(c.transport, c.wait, "hello\nagain\n"));
    const m = /echoed 12 bytes in (\d+) buffers, (\d+) interrupts/.exec(out.com1);
    assert.ok(m, out.com1);
    assert.ok(Number(m[2]) >= 1, "an interrupt woke the guest");
    assert.equal(result.exitStatus, 1, result.message);
  });
}

kvmTest("virtio-console on vmdesc: `output` to a file, the serial port apart", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmdesc-console-" });
  try {
    const p = plan("console_mmio");
    p.devices.find((d) => d.id === "hvc0")!.props.output = `${dir}/hvc0.log`;
    const { result, out } = await boot(p, "to the file\n" + EOT);
    assert.equal(result.exitStatus, 1, result.message);
    assert.equal(
      Deno.readTextFileSync(`${dir}/hvc0.log`),
      expectedConsole("mmio", "intx", "to the file\n"),
    );
    assert.equal(out.hvc0, undefined, "nothing of the console reached the caller's sink");
    assert.match(out.com1, /all ok/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

kvmTest("vmdesc boot: a virtio console reads a piped stdin and writes stdout", async () => {
  await buildGuests(["virtio-console"]);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cli/vmdesc.ts",
      "boot",
      VMDESC,
      "--machine",
      "console_pci",
      "--timeout",
      "30",
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("piped in\n" + EOT));
  await w.close();
  const r = await child.output();
  const stdout = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 1, new TextDecoder().decode(r.stderr));
  assert.ok(stdout.includes(expectedConsole("pci", "msix", "piped in\n")), stdout);
  assert.match(stdout, /echoed 9 bytes/);
});

kvmTest("vmdesc boot on a terminal: the console offers the terminal's size", async () => {
  await buildGuests(["virtio-console"]);
  const inner = `stty cols 100 rows 30; '${Deno.execPath()}' run -A cli/vmdesc.ts boot ` +
    `examples/guests/virtio.vmdesc --machine console_mmio --timeout 30; echo "status=$?"`;
  // Raw mode: ^D is a byte for the guest, not end-of-file for the terminal.
  const out = await typeOnTerminal(inner, ROOT, "echo until ^D", "tty" + EOT);
  assert.match(out, /virtio-console: size 100x30/, JSON.stringify(out));
  assert.match(out, /echoed 3 bytes/, JSON.stringify(out));
  assert.match(out, /status=1/);
});

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
