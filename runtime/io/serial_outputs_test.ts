/**
 * Serial output routing on the real file system (no /dev/kvm): streams, "null", files
 * relative to the base directory, one descriptor per file, and nothing left behind when a
 * file cannot be opened.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import type { DevicePlan, Plan } from "../../plan/types.ts";
import { RuntimeError } from "../errors.ts";
import { openSerialOutputs } from "./serial_outputs.ts";

function serial(id: string, output?: string): DevicePlan {
  return {
    id,
    kind: "serial",
    ports: [{ base: 0x3f8, size: 8 }],
    mmio: [],
    irq: 4,
    props: output === undefined ? { port: 0x3f8 } : { port: 0x3f8, output },
  };
}
function plan(devices: DevicePlan[], pci: unknown[] = []): Plan {
  return { devices, pci } as unknown as Plan; // only the consoles are read
}
const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("serial output: stdout, stderr, null and files relative to the base directory", () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmdesc-serial-" });
  try {
    Deno.mkdirSync(`${dir}/logs`);
    Deno.writeTextFileSync(`${dir}/logs/old.txt`, "stale text from an earlier run\n");
    const got = { stdout: "", stderr: "" };
    const fd0 = fds();
    const o = openSerialOutputs(
      plan([
        serial("com1"),
        serial("com2", "stderr"),
        serial("com3", "null"),
        serial("com4", "logs/a.txt"),
        serial("com5", `${dir}/logs/old.txt`),
        serial("com6", "logs/a.txt"), // same file as com4: one descriptor
      ]),
      dir,
      {
        stdout: (b) => got.stdout += new TextDecoder().decode(b),
        stderr: (b) => got.stderr += new TextDecoder().decode(b),
      },
    );
    deepEqual(Object.fromEntries(o.targets), {
      com1: "stdout",
      com2: "stderr",
      com3: "null",
      com4: `${dir}/logs/a.txt`,
      com5: `${dir}/logs/old.txt`,
      com6: `${dir}/logs/a.txt`,
    });
    equal(fds(), fd0 + 2, "two files open");
    for (const id of ["com1", "com2", "com3", "com4", "com5", "com6"]) o.write(id, enc(`${id}\n`));
    // Write-through: the bytes are in the file before close.
    equal(Deno.readTextFileSync(`${dir}/logs/a.txt`), "com4\ncom6\n");
    o.close();
    o.close(); // idempotent
    equal(fds(), fd0, "files closed");
    deepEqual(got, { stdout: "com1\n", stderr: "com2\n" });
    equal(Deno.readTextFileSync(`${dir}/logs/old.txt`), "com5\n", "truncated, then written");
    o.write("com4", enc("late\n")); // after close: dropped, no throw
    equal(Deno.readTextFileSync(`${dir}/logs/a.txt`), "com4\ncom6\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("serial output: a file that cannot be opened is E1017 and leaves nothing behind", () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmdesc-serial-" });
  try {
    Deno.writeTextFileSync(`${dir}/keep.txt`, "mine\n");
    const fd0 = fds();
    const std = { stdout: () => {}, stderr: () => {} };
    for (const bad of ["no/such/dir/out.txt", "."]) {
      throws(
        () =>
          openSerialOutputs(
            plan([serial("com1", "first.txt"), serial("com2", bad)]),
            dir,
            std,
          ),
        (e: unknown) => {
          ok(e instanceof RuntimeError);
          equal(e.code, "E1017");
          ok(e.message.includes("serial com2"), e.message);
          ok(e.hint?.includes(dir), e.hint ?? "");
          return true;
        },
        bad,
      );
      equal(fds(), fd0, `${bad}: no descriptor left open`);
      deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["keep.txt"], bad);
    }
    // abandon() (the boot did not start) removes what it created, not what was there.
    const o = openSerialOutputs(
      plan([serial("com1", "new.txt"), serial("com2", "keep.txt")]),
      dir,
      std,
    );
    o.abandon();
    equal(fds(), fd0);
    deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["keep.txt"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("serial output: virtio consoles are routed too, a PCI function by its BDF", () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmdesc-console-" });
  try {
    const got = { stdout: "", stderr: "" };
    const hvc0: DevicePlan = {
      id: "hvc0",
      kind: "virtio_console",
      ports: [],
      mmio: [{ base: 0xfeb0_0000, size: 4096 }],
      irq: 5,
      props: { output: "hvc0.txt", input: "none" },
    };
    const fn = { bdf: "00:05.0", kind: "virtio_console", props: { output: "stderr" } };
    const o = openSerialOutputs(plan([serial("com1"), hvc0], [fn]), dir, {
      stdout: (b) => got.stdout += new TextDecoder().decode(b),
      stderr: (b) => got.stderr += new TextDecoder().decode(b),
    });
    equal(o.targets.get("00:05.0"), "stderr");
    equal(o.targets.get("hvc0"), `${dir}/hvc0.txt`);
    o.write("00:05.0", enc("from the pci console\n"));
    o.write("com1", enc("from com1\n"));
    o.write("hvc0", enc("to the file\n"));
    o.close();
    deepEqual(got, { stdout: "from com1\n", stderr: "from the pci console\n" });
    equal(Deno.readTextFileSync(`${dir}/hvc0.txt`), "to the file\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
