/** The library API end to end: compileFile → createMachine → run, serial as a stream. */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { compileFile, compileText, createMachine } from "../../mod.ts";
import { buildGuests } from "../../examples/guests/build.ts";
import { skipReason } from "../skip.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const skip = skipReason("library boot tests", { kvm: true });

Deno.test({
  name: "library: compileFile + createMachine boot hello; serial arrives as a stream",
  ignore: skip !== null,
  async fn() {
    await buildGuests(["hello"]);
    const c = await compileFile(ROOT + "examples/hello.vmdesc");
    equal(c.hasErrors, false);
    ok(c.plan);
    using m = await createMachine(c.plan);
    const text = new Response(m.serial).text();
    const r = await m.run({ timeout: 20 });
    equal(r.reason, "debug_exit");
    // examples/hello.vmdesc declares `success 42` on its debug_exit: the guest's 42 is status 0.
    equal(r.debugValue, 42);
    equal(r.exitStatus, 0);
    equal(await text, "Hello from vmdesc guest\n");
    ok(r.stats.exits_total > 0);
  },
});

Deno.test("library: compileText reports diagnostics and no Plan for a broken machine", () => {
  const c = compileText("machine m { cpus 0 }\n");
  equal(c.hasErrors, true);
  equal(c.plan, null);
  ok(c.diagnostics.length > 0);
  deepStrictEqual(c.diagnostics.every((d) => /^[EW]\d{4}$/.test(d.code)), true);
});

Deno.test("library: a file that cannot be read is E2002 with a hint, not a thrown NotFound", async () => {
  const c = await compileFile(ROOT + "examples/no-such-machine.vmdesc");
  equal(c.hasErrors, true);
  equal(c.plan, null);
  equal(c.diagnostics.length, 1);
  equal(c.diagnostics[0].code, "E2002");
  ok(c.diagnostics[0].message.includes("no-such-machine.vmdesc"));
  ok(c.diagnostics[0].hint);
});

Deno.test({
  name: "library: a machine that cannot be created leaves the caller's serial stream unlocked",
  ignore: skip !== null,
  async fn() {
    const c = compileText(
      'machine m {\n  memory 64 MiB\n  device serial com1 { port 0x3f8 }\n  boot pvh "/nonexistent/guest.elf"\n}\n',
    );
    ok(c.plan);
    const sink = new WritableStream<Uint8Array>();
    const err = await createMachine(c.plan, { serial: sink }).then(() => null, (e) => e);
    equal((err as { code?: string } | null)?.code, "E1010");
    equal(sink.locked, false, "the caller can still use its stream");
  },
});
