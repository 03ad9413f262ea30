import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { cleanLine, ProgressLine } from "./progress.ts";

function fake(sharesScreen: boolean, columns = 80) {
  let t = 1000;
  const writes: string[] = [];
  const p = new ProgressLine({
    write: (s) => writes.push(s),
    columns: () => columns,
    now: () => t,
    sharesScreen,
  });
  const enc = new TextEncoder();
  return {
    p,
    writes,
    advance: (ms: number) => t += ms,
    out: (s: string) => p.output(enc.encode(s)),
  };
}

Deno.test("progress: elapsed time and the last complete serial line", () => {
  const f = fake(false);
  assertEquals(f.p.render(), "booting… 0.0 s  last: (no output yet)");
  f.advance(12_345);
  f.out("[    0.000000] Linux version 6.1\r\n[    0.1] BIOS-e820: usable\r\n[    0.2] part");
  assertEquals(f.p.render(), "booting… 12.3 s  last: [ 0.1] BIOS-e820: usable");
  f.p.tick();
  assertEquals(f.writes, ["\r\x1b[K" + "booting… 12.3 s  last: [ 0.1] BIOS-e820: usable"]);
});

Deno.test("progress: fitted to the terminal width", () => {
  const f = fake(false, 30);
  f.out("a very long line that does not fit in thirty columns at all\n");
  const r = f.p.render();
  assertEquals([...r].length, 29);
  assert(r.endsWith("…"));
});

Deno.test("progress: on a shared screen it waits for silence at a line start, and clears first", () => {
  const f = fake(true);
  f.out("Decompressing");
  f.advance(1000);
  f.p.tick();
  assertEquals(f.writes, [], "never inside a partial guest line");
  f.out(" done\n");
  f.advance(100);
  f.p.tick();
  assertEquals(f.writes, [], "not right after output");
  f.advance(400);
  f.p.tick();
  assertEquals(f.writes.length, 1);
  f.out("next\n");
  assertEquals(f.writes[1], "\r\x1b[K", "cleared before the guest writes");
});

Deno.test("progress: stop clears a drawn line once and for all", () => {
  const f = fake(false);
  f.p.tick();
  f.p.stop();
  f.p.stop();
  f.p.tick();
  assertEquals(f.writes.length, 2);
  assertEquals(f.writes[1], "\r\x1b[K");
  assert(f.p.stopped);
  const g = fake(false);
  g.p.stop();
  assertEquals(g.writes, [], "nothing drawn, nothing to clear");
});

Deno.test("progress: guest control codes never reach the line", () => {
  assertEquals(cleanLine("\x1b[1;31mred\x1b[0m\tand\x07 bell\r"), "red and bell");
});
