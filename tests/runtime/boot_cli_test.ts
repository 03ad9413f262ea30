/**
 * `vmdesc boot` as a user runs it: a real process, real guests, real /dev/kvm. Checks the
 * exit statuses, what goes to stdout (guest serial) and stderr (vmdesc), --stats,
 * --stats-json, --timeout, Ctrl-C, stdin to the serial port, --plan, and the E1xxx errors.
 */
import { equal, match, ok } from "node:assert/strict";
import { buildGuests } from "../../examples/guests/build.ts";
import { skipReason } from "../skip.ts";
import { checkTripleFaultDump } from "../kvm.ts";
import { type Run, run } from "../util/cli.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const CLI = ROOT + "cli/vmdesc.ts";
const kvm = skipReason("vmdesc boot CLI tests", { kvm: true }) === null;

/** `vmdesc boot ARGS` (with `stdin` on standard input), in the repository. */
function boot(args: string[], stdin?: string): Promise<Run> {
  return run(Deno.execPath(), {
    args: ["run", "-A", CLI, "boot", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }, stdin);
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name,
    ignore: !kvm,
    async fn() {
      await buildGuests();
      await fn();
    },
  });

test("boot hello: serial on stdout, status 0 (debug_exit `success 42`), nothing on stderr", async () => {
  const r = await boot(["examples/hello.vmdesc"]);
  equal(r.code, 0);
  equal(r.stdout, "Hello from vmdesc guest\n");
  equal(r.stderr, "");
});

test("boot --stats and --stats-json: exits by reason and device, guest vs VMM time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-stats-" });
  try {
    const r = await boot(["examples/hello.vmdesc", "--stats", "--stats-json", `${dir}/s.json`]);
    equal(r.code, 0);
    match(r.stderr, /exits \d+/);
    match(r.stderr, /com1 \(pio\)\s+\d+/);
    match(r.stderr, /in guest \(KVM_RUN\)/);
    const j = JSON.parse(await Deno.readTextFile(`${dir}/s.json`));
    equal(j.reason, "debug_exit");
    equal(j.exit_status, 0);
    ok(j.exits.io > 0);
    equal(j.exits_total, Object.values(j.exits as Record<string, number>).reduce((a, b) => a + b));
    ok(
      j.devices.some((d: { id: string; pio_exits: number }) => d.id === "com1" && d.pio_exits > 0),
    );
    ok(typeof j.guest_ms === "number" && typeof j.vmm_ms === "number");
    // Atomic write: only the result file is there, no temp file left behind.
    equal([...Deno.readDirSync(dir)].length, 1);
    // A stats path that cannot be written: E2003 with a hint; the guest's status stands.
    const bad = await boot(["examples/hello.vmdesc", "--stats-json", `${dir}/no/such/s.json`]);
    equal(bad.code, 0);
    match(bad.stderr, /error\[E2003\]: cannot write '.*no\/such\/s\.json': no such file/);
    match(bad.stderr, /help: check the directory exists and is writable/);
    equal([...Deno.readDirSync(dir)].length, 1, "nothing else left in the directory");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("boot --hole-strategy trap --stats: the pci_host's ECAM exits are counted on their own", async () => {
  const r = await boot([
    "examples/guests/pci_scan.vmdesc",
    "--hole-strategy",
    "trap",
    "--stats",
    "--cmdline",
    "ecam=0xe0000000 buses=0-0",
  ]);
  match(r.stderr, /pci_host \(ecam mmio\)\s+\d+/);
  match(r.stderr, /pci_host \(pio\)\s+\d+/);
});

test("boot --timeout ends a guest that never exits: message, status 6", async () => {
  const r = await boot([
    "examples/guests/faults.vmdesc",
    "--machine",
    "endless_loop",
    "--timeout",
    "0.5",
  ]);
  equal(r.code, 6);
  match(r.stderr, /timeout: guest still running after 0.5 s/);
});

test("Ctrl-C (SIGINT, status 130) and SIGTERM (status 143) stop a spinning guest cleanly", async () => {
  for (
    const [sig, status, text] of [["SIGINT", 130, /interrupted \(Ctrl-C\)/], [
      "SIGTERM",
      143,
      /terminated \(SIGTERM\)/,
    ]] as const
  ) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        "boot",
        "examples/guests/faults.vmdesc",
        "--machine",
        "endless_loop",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    // Wait for the guest's first line: by then the run loop is live.
    const reader = child.stdout.getReader();
    let seen = "";
    while (!seen.includes("spinning")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    child.kill(sig);
    const o = await child.output();
    equal(o.code, status, sig);
    match(new TextDecoder().decode(o.stderr), text);
  }
});

test("stdin reaches the first serial port (echo guest, interrupt-driven RX)", async () => {
  const r = await boot(["examples/guests/echo.vmdesc", "--timeout", "20"], "hi\n");
  match(r.stdout, /echo: hi/);
  equal(r.code, 5);
});

test("triple fault through the CLI: message and register dump on stderr, status 4", async () => {
  const r = await boot(["examples/guests/faults.vmdesc", "--machine", "triple_fault"]);
  equal(r.code, 4);
  match(r.stderr, /guest triple fault/);
  checkTripleFaultDump(r.stderr);
});

test("payload errors: E1010 missing, E1011 truncated, E1012 not PVH — status 10, hint, no stack", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-payload-" });
  try {
    const missing = await boot(["examples/hello.vmdesc", "--kernel", `${dir}/nope.elf`]);
    equal(missing.code, 10);
    match(missing.stderr, /error\[E1010\]/);
    match(missing.stderr, /help:/);

    const elf = await Deno.readFile(ROOT + "examples/guests/build/hello.elf");
    await Deno.writeFile(`${dir}/cut.elf`, elf.subarray(0, 200));
    const cut = await boot(["examples/hello.vmdesc", "--kernel", `${dir}/cut.elf`]);
    equal(cut.code, 10);
    match(cut.stderr, /error\[E1011\]/);

    await Deno.writeFile(`${dir}/text.bin`, new TextEncoder().encode("not an elf at all"));
    const notElf = await boot(["examples/hello.vmdesc", "--kernel", `${dir}/text.bin`]);
    equal(notElf.code, 10);
    match(notElf.stderr, /error\[E1012\]/);
    match(notElf.stderr, /boot flat/);

    // An ELF64 without the Xen PVH note (the deno binary itself).
    const noNote = await boot(["examples/hello.vmdesc", "--kernel", Deno.execPath()]);
    equal(noNote.code, 10);
    match(noNote.stderr, /error\[E1012\].*no PVH entry note/);
    for (const o of [missing, cut, notElf, noNote]) {
      ok(!/\bat .*\.ts:\d+/.test(o.stderr), "no stack trace");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("boot --plan PLAN.json boots a Plan without the compiler; a malformed one is E1006", async () => {
  const built = await buildGuests(["hello"]);
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-plan-" });
  try {
    const plan = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "plan", "--json", "examples/hello.vmdesc"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(plan.code, 0, new TextDecoder().decode(plan.stderr));
    // As printed, saved elsewhere: its relative payload path still resolves from `source`.
    await Deno.writeFile(`${dir}/hello.json`, plan.stdout);
    const r = await boot(["--plan", `${dir}/hello.json`]);
    equal(r.code, 0, r.stderr);
    equal(r.stdout, "Hello from vmdesc guest\n");

    // A hand-written Plan without a source: paths resolve from the Plan file's directory.
    const p = JSON.parse(new TextDecoder().decode(plan.stdout));
    p.source = null;
    p.boot.path = "guest.elf";
    await Deno.copyFile(built.get("hello")!, `${dir}/guest.elf`);
    await Deno.writeTextFile(`${dir}/own.json`, JSON.stringify(p));
    const own = await boot(["--plan", `${dir}/own.json`]);
    equal(own.code, 0, own.stderr);
    equal(own.stdout, "Hello from vmdesc guest\n");

    // Malformed: E1006 naming the fields, status 10, no stack trace, --kernel not applied.
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ version: 1, machine: "m" }));
    const bad = await boot(["--plan", `${dir}/bad.json`, "--kernel", "x.elf"]);
    equal(bad.code, 10);
    match(
      bad.stderr,
      /^error\[E1006\]: .*bad\.json is not a valid Plan: \/ must have required property 'source'/,
    );
    match(bad.stderr, /help: write it with 'vmdesc plan --json'/);
    ok(!/\bat \S+\.ts:\d+/.test(bad.stderr), "no stack trace");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("a .vmdesc with errors is not booted (status 1); bad flags are usage errors (status 2)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-bad-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.vmdesc`,
      'machine m { cpus 1 memory 64 MiB device warp_drive { } boot flat "x" { load 0x100000 } }\n',
    );
    const r = await boot([`${dir}/bad.vmdesc`]);
    equal(r.code, 1);
    match(r.stderr, /error\[E0\d{3}\]/);
    equal(r.stdout, "");
    const u = await boot(["examples/hello.vmdesc", "--timeout", "soon"]);
    equal(u.code, 2);
    const s = await boot(["examples/hello.vmdesc", "--hole-strategy", "maybe"]);
    equal(s.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("--stats-json into a FIFO writes through it instead of replacing the node", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-fifo-" });
  try {
    const fifo = `${dir}/stats.fifo`;
    equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
    const reading = Deno.readTextFile(fifo);
    const r = await boot(["examples/hello.vmdesc", "--stats-json", fifo]);
    equal(r.code, 0);
    const j = JSON.parse(await reading);
    equal(j.exit_status, 0);
    ok(Deno.statSync(fifo).isFifo, "the FIFO is still a FIFO");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("boot on a path it cannot read says why (E2002) with check's and plan's status, 2", async () => {
  const dir = await boot(["examples"]);
  equal(dir.code, 2);
  match(dir.stderr, /^error\[E2002\]: cannot read 'examples': is a directory/);
  match(dir.stderr, /help: /);
  const missing = await boot(["no/such.vmdesc"]);
  equal(missing.code, 2);
  match(missing.stderr, /^error\[E2002\]: cannot read 'no\/such\.vmdesc': no such file/);
  // --plan: the same coded message and status, not the OS's own wording.
  const plan = await boot(["--plan", "/no/such.plan.json"]);
  equal(plan.code, 2);
  equal(
    plan.stderr.split("\n")[0],
    "error[E2002]: cannot read '/no/such.plan.json': no such file",
  );
  match(plan.stderr, /help: check the path and its permissions/);
});
