/**
 * `vmdesc boot` honours each serial device's `output`: a file (relative to the .vmdesc's
 * directory, written through, closed at the end), "null", "stderr"; a file that cannot be
 * opened is E1017 before anything runs, and leaves nothing behind. The library API
 * (createMachine) honours files and "null" the same way.
 */
import { equal, match } from "node:assert/strict";
import { buildGuests } from "../../examples/guests/build.ts";
import { skipReason } from "../skip.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const CLI = ROOT + "cli/vmdesc.ts";
const kvm = skipReason("serial output CLI tests", { kvm: true }) === null;
const HELLO = "Hello from vmdesc guest\n";

async function bootIn(dir: string, output: string) {
  const built = await buildGuests(["hello"]);
  await Deno.writeTextFile(
    `${dir}/m.vmdesc`,
    `machine m {
  memory 64 MiB
  device serial com1 { port 0x3f8 output ${JSON.stringify(output)} }
  device debug_exit { port 0xf4 success 42 }
  boot pvh ${JSON.stringify(built.get("hello")!)}
}
`,
  );
  // Run from another directory: relative outputs must follow the .vmdesc, not the cwd.
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "boot", `${dir}/m.vmdesc`],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  return { code: o.code, stdout: d.decode(o.stdout), stderr: d.decode(o.stderr) };
}

function test(name: string, fn: (dir: string) => Promise<void>) {
  Deno.test({
    name,
    ignore: !kvm,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "vmdesc-serial-out-" });
      try {
        await fn(dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

test("serial output to a file relative to the .vmdesc: nothing on stdout", async (dir) => {
  await Deno.mkdir(`${dir}/logs`);
  await Deno.writeTextFile(`${dir}/logs/serial.txt`, "an older, longer run's output\n");
  const r = await bootIn(dir, "logs/serial.txt");
  equal(r.code, 0, r.stderr);
  equal(r.stdout, "");
  equal(r.stderr, "");
  equal(await Deno.readTextFile(`${dir}/logs/serial.txt`), HELLO, "truncated, then the guest");
});

test('serial output "null" and "stderr"', async (dir) => {
  const n = await bootIn(dir, "null");
  equal(n.code, 0, n.stderr);
  equal(n.stdout, "");
  equal(n.stderr, "");
  const e = await bootIn(dir, "stderr");
  equal(e.code, 0, e.stderr);
  equal(e.stdout, "");
  equal(e.stderr, HELLO);
});

test("serial output file that cannot be opened: E1017 with a hint, nothing left", async (dir) => {
  const r = await bootIn(dir, "no/such/dir/serial.txt");
  equal(r.code, 10);
  equal(r.stdout, "");
  match(r.stderr, /error\[E1017\]: serial com1: cannot open its output file .*no\/such\/dir/);
  match(r.stderr, /help: relative paths are resolved from /);
  equal([...Deno.readDirSync(dir)].map((e) => e.name).join(), "m.vmdesc");
});

test('library API: a device\'s output file and "null" are honoured; the rest reach the caller', async (dir) => {
  const { compileFile, createMachine } = await import("../../mod.ts");
  const built = await buildGuests(["hello"]);
  const machine = (output: string) =>
    `machine m {
  memory 64 MiB
  device serial com1 { port 0x3f8 output ${JSON.stringify(output)} }
  device debug_exit { port 0xf4 success 42 }
  boot pvh ${JSON.stringify(built.get("hello")!)}
}
`;
  for (
    const [output, toFile, toCaller] of [
      ["logs/serial.txt", HELLO, ""],
      ["null", null, ""],
      ["stderr", null, HELLO],
    ] as const
  ) {
    await Deno.writeTextFile(`${dir}/m.vmdesc`, machine(output));
    await Deno.mkdir(`${dir}/logs`, { recursive: true });
    const plan = [...(await compileFile(`${dir}/m.vmdesc`)).plans.values()][0];
    let seen = "";
    using m = await createMachine(plan, {
      serial: (bytes) => seen += new TextDecoder().decode(bytes),
    });
    const r = await m.run({ timeout: 20 });
    equal(r.exitStatus, 0, output);
    equal(seen, toCaller, `${output}: what the caller's sink got`);
    if (toFile !== null) equal(await Deno.readTextFile(`${dir}/${output}`), toFile, output);
  }
  // A file that cannot be opened: E1017 before any VM exists.
  await Deno.writeTextFile(`${dir}/m.vmdesc`, machine("no/such/dir/out.txt"));
  const plan = [...(await compileFile(`${dir}/m.vmdesc`)).plans.values()][0];
  await createMachine(plan).then(
    () => Promise.reject(new Error("expected E1017")),
    (e) => equal((e as { code?: string }).code, "E1017"),
  );
});
