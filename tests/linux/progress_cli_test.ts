/**
 * `vmdesc boot`'s progress line, end to end: under a real pseudo-terminal (util-linux
 * `script`) the line is drawn and cleared; with stdout and stderr piped there is no
 * progress text and not a single control code. The guest is the endless-loop test guest
 * (prints one line, then spins), ended by --timeout.
 */
import { skipReason } from "../skip.ts";
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { buildGuests } from "../../examples/guests/build.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ARGS = [
  "run",
  "-A",
  `${ROOT}cli/vmdesc.ts`,
  "boot",
  `${ROOT}examples/guests/faults.vmdesc`,
  "--machine",
  "endless_loop",
  "--timeout",
  "2",
];

const skip = skipReason("progress line tests", { kvm: true, tools: ["script"] });

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

Deno.test({
  name: "progress: on a terminal, `boot` draws the line and clears it at the end",
  ignore: skip !== null,
  async fn() {
    await buildGuests(["endless-loop"]);
    const cmd = [Deno.execPath(), ...ARGS].map(quote).join(" ");
    // stdin stays open and silent: `script` turns the end of its input into a ^D for the
    // guest, which (like any key) would end the progress line.
    const child = new Deno.Command("script", {
      args: ["-qec", cmd, "/dev/null"],
      env: { TERM: "xterm", NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const text = await new Response(child.stdout).text();
    await child.status;
    await child.stdin.close();
    assertMatch(text, /endless-loop: spinning/);
    // deno-lint-ignore no-control-regex
    assertMatch(text, /\r\x1b\[Kbooting… \d+\.\d s {2}last: endless-loop: spinning/);
    // The last drawing is cleared before vmdesc's own closing message.
    const lastDraw = text.lastIndexOf("booting…");
    const clear = text.indexOf("\r\x1b[K", lastDraw);
    const closing = text.indexOf("vmdesc: timeout");
    assert(clear > lastDraw && closing > clear, JSON.stringify(text.slice(lastDraw - 10)));
  },
});

Deno.test({
  name: "progress: piped, `boot` writes plain output without control codes",
  ignore: skip !== null,
  async fn() {
    await buildGuests(["endless-loop"]);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ARGS,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 6);
    assertMatch(stdout, /endless-loop: spinning/);
    assertMatch(stderr, /vmdesc: timeout/);
    assert(!stderr.includes("booting…"), stderr);
    const all = stderr + stdout;
    assert(!all.includes("\x1b") && !all.includes("\r"), JSON.stringify(stderr));
  },
});
