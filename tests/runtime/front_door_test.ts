/**
 * The runtime's front door (runtime/mod.ts createMachine), the way `vmdesc boot` and
 * library users come in: Plans from outside the compiler are checked against the schema
 * before anything is built (and a compiled one need not be), and a progress display is
 * told when the guest starts, what it prints, when stderr is about to be written, and
 * when it should go away (the run ended, or input reached the guest).
 */
import { equal, match, ok, rejects } from "node:assert/strict";
import { createMachine, type ProgressHooks, RuntimeError } from "../../runtime/mod.ts";
import { exitGuest, flatPlan, haveKvm, serialDevice, withGuest } from "./plans.ts";
import type { Plan } from "../../plan/types.ts";

const kvm = haveKvm();
if (!kvm) console.log("skip front door tests: /dev/kvm is absent");
const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !kvm, fn });

/** Print "hi\n" on COM1, then exit 0 (status 1). */
const HI = new Uint8Array([
  ...[0x66, 0xba, 0xf8, 0x03], // mov dx, 0x3f8
  ...[0xb0, 0x68, 0xee, 0xb0, 0x69, 0xee, 0xb0, 0x0a, 0xee], // 'h' 'i' '\n'
  ...[0xb0, 0x00, 0xe6, 0xf4], // out 0xf4 <- 0
]);

test("front door: a Plan from outside is checked against the schema first (E1006, named)", async () => {
  await withGuest(exitGuest(0), async (path) => {
    const plan = { ...flatPlan({ path }), warp: true } as Plan;
    await rejects(createMachine(plan), (e: unknown) => {
      ok(e instanceof RuntimeError);
      equal(e.code, "E1006");
      equal(e.message, "the Plan is not a valid Plan: / must NOT have additional properties");
      match(e.hint ?? "", /plan\/schema\.json/);
      return true;
    });
    await rejects(
      createMachine({ ...plan, version: 2 } as unknown as Plan, { planName: "x.json" }),
      (e: unknown) => e instanceof RuntimeError && e.message === "x.json is not a version 1 Plan",
    );
    // A Plan the compiler made in this process is trusted as it is: the extra field is
    // not looked at, and the machine boots.
    using m = await createMachine(plan, { fromCompiler: true });
    equal((await m.run({ timeout: 10 })).exitStatus, 1);
  });
});

test("front door: progress hooks hear start, the guest's output and the end", async () => {
  await withGuest(HI, async (path) => {
    const plan = flatPlan({ path });
    plan.devices.unshift(serialDevice());
    const calls: string[] = [];
    const progress: ProgressHooks = {
      start: () => calls.push("start"),
      output: (b) => calls.push(`output ${JSON.stringify(new TextDecoder().decode(b))}`),
      clear: () => calls.push("clear"),
      stop: () => calls.push("stop"),
    };
    let out = "";
    using m = await createMachine(plan, {
      serial: (b) => out += new TextDecoder().decode(b),
      progress,
      vcpuThread: "caller",
    });
    equal(calls.length, 0, "nothing before the run");
    equal((await m.run({ timeout: 10 })).exitStatus, 1);
    equal(out, "hi\n");
    equal(calls[0], "start");
    equal(calls.at(-1), "stop");
    equal(calls.filter((c) => c.startsWith("output")).join(""), 'output "hi\\n"');
  });
});

test("front door: input reaching the guest stops the progress display; warnings clear it", async () => {
  // Read COM1's receive buffer once the line status says data is ready, then read an
  // unassigned MMIO address (a warning), then exit.
  const code = new Uint8Array([
    ...[0x66, 0xba, 0xfd, 0x03], // mov dx, 0x3fd (LSR)
    ...[0xec, 0xa8, 0x01, 0x74, 0xfb], // wait: in al, dx; test al, 1; jz wait
    ...[0x66, 0xba, 0xf8, 0x03, 0xec], // mov dx, 0x3f8; in al, dx
    ...[0xa1, 0x00, 0x00, 0x00, 0xd0], // mov eax, [0xd0000000] (unassigned)
    ...[0xb0, 0x00, 0xe6, 0xf4], // out 0xf4 <- 0
  ]);
  await withGuest(code, async (path) => {
    const plan = flatPlan({ path });
    plan.devices.unshift(serialDevice());
    const calls: string[] = [];
    const progress: ProgressHooks = {
      start: () => calls.push("start"),
      output: () => calls.push("output"),
      clear: () => calls.push("clear"),
      stop: () => calls.push("stop"),
    };
    // The default warn writes "vmdesc: warning: read of unassigned MMIO …" to stderr.
    using m = await createMachine(plan, { stdin: "x", progress });
    equal((await m.run({ timeout: 10 })).exitStatus, 1);
    equal(
      calls.join(" "),
      "start stop clear stop",
      "input stopped it before the guest's end did; the warning cleared the screen first",
    );
  });
});
