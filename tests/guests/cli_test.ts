/**
 * The guests through the real command line, as a user runs them: `vmdesc boot` in a
 * subprocess, serial on stdout, messages on stderr, the exit status checked.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./boot.ts";
import { checkTripleFaultDump } from "../kvm.ts";
import { type Run, run } from "../util/cli.ts";
import { buildGuests } from "../../examples/guests/build.ts";
import { typeOnTerminal } from "../util/terminal.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** `vmdesc ARGS` in the repository, `stdin` on its standard input (closed after it). */
function vmdesc(args: string[], stdin = ""): Promise<Run> {
  return run(Deno.execPath(), { args: ["run", "-A", "cli/vmdesc.ts", ...args], cwd: ROOT }, stdin);
}

kvmTest("vmdesc boot hello.vmdesc: the guest's line on stdout, status 85", async () => {
  await buildGuests(["hello"]);
  const r = await vmdesc(["boot", "examples/guests/hello.vmdesc"]);
  assert.equal(r.stdout, "Hello from vmdesc guest\n", r.stderr);
  assert.equal(r.code, 85);
});

kvmTest("vmdesc boot poweroff.vmdesc: a guest that powers off ends it with status 0", async () => {
  await buildGuests(["poweroff"]);
  const r = await vmdesc(["boot", "examples/guests/poweroff.vmdesc", "--machine", "poweroff"]);
  assert.equal(r.stdout, "poweroff: sleep control 0600, status 0601, S5 type 5\n", r.stderr);
  assert.match(r.stderr, /vmdesc: guest powered off \(acpi_sleep\)/);
  assert.equal(r.code, 0);
});

kvmTest("vmdesc boot echo.vmdesc: stdin (a pipe) reaches the guest's UART", async () => {
  await buildGuests(["echo"]);
  const r = await vmdesc(["boot", "examples/guests/echo.vmdesc", "--timeout", "20"], "piped in\n");
  assert.equal(r.stdout, "echo: ready (interrupts)\necho: piped in\n", r.stderr);
  assert.equal(r.code, (8 << 1) | 1);
});

kvmTest("vmdesc boot --machine triple_fault: message and register dump, status 4", async () => {
  await buildGuests(["triple-fault"]);
  const r = await vmdesc(["boot", "examples/guests/faults.vmdesc", "--machine", "triple_fault"]);
  assert.equal(r.stdout, "triple-fault: empty IDT, then ud2\n");
  assert.match(r.stderr, /guest triple fault/);
  checkTripleFaultDump(r.stderr);
  assert.equal(r.code, 4);
});

kvmTest("vmdesc boot --timeout ends a guest spinning without exits, status 6", async () => {
  await buildGuests(["endless-loop"]);
  const r = await vmdesc([
    "boot",
    "examples/guests/faults.vmdesc",
    "--machine",
    "endless_loop",
    "--timeout",
    "1",
  ]);
  assert.equal(r.stdout, "endless-loop: spinning\n");
  assert.match(r.stderr, /timeout/);
  assert.equal(r.code, 6);
});

kvmTest(
  "vmdesc boot on a terminal: stdin in raw mode (no echo, no line buffering), restored after",
  async () => {
    await buildGuests(["echo"]);
    // `script` gives vmdesc a pseudo-terminal; `stty -a` afterwards shows the mode it left.
    const inner = `'${Deno.execPath()}' run -A cli/vmdesc.ts boot examples/guests/echo.vmdesc ` +
      `--timeout 20; echo "status=$?"; stty -a`;
    // No newline: a terminal still in canonical mode would hold these bytes back and echo
    // them; in raw mode each goes to the guest as typed, and CR ends its line.
    const out = await typeOnTerminal(inner, ROOT, "echo: ready", "tty\r");
    // On a loaded host the guest may stay silent for over 0.5 s before "ready", and the
    // progress line (drawn and cleared with CR + erase-line on stderr, the same terminal)
    // shows up: it belongs to the terminal run, not to the guest's bytes checked here.
    // deno-lint-ignore no-control-regex -- the escape sequence is what is being removed
    const guest = out.replace(/\r\x1b\[K(?:booting…[^\r\n]*)?/g, "");
    assert.ok(
      guest.startsWith("echo: ready (interrupts)\r\necho: tty\r\nstatus=7\r\n"),
      JSON.stringify(out),
    );
    const flags = out.split(/\s+/);
    assert.ok(flags.includes("icanon") && flags.includes("echo"), "terminal mode restored");
  },
);
