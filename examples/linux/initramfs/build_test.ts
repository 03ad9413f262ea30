/**
 * The initramfs writer against real tools: busybox's own cpio lists what ours wrote (names,
 * types, modes, link targets, device numbers) and extracts the files byte for byte; the
 * build is reproducible and refuses a dynamically linked busybox. The kernel unpacking it
 * is tests/linux/linux_boot_test.ts.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { gzip, newc } from "./cpio.ts";
import { buildInitramfs, DEFAULT_BUSYBOX, InitramfsError, isStaticElf } from "./build.ts";

async function busyboxCpio(args: string[], archive: Uint8Array, cwd?: string) {
  const p = new Deno.Command(DEFAULT_BUSYBOX, {
    args: ["cpio", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    cwd,
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(archive);
  await w.close();
  const out = await p.output();
  const dec = new TextDecoder();
  return { ok: out.success, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

async function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const s = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("cpio: busybox reads back every kind of entry newc() writes", async () => {
  const data = new TextEncoder().encode("odd length!"); // 11 bytes: exercises the padding
  const archive = newc([
    { kind: "dir", path: "/a", mode: 0o750 },
    { kind: "file", path: "a/file", data, mode: 0o640 },
    { kind: "file", path: "a/empty", data: new Uint8Array() },
    { kind: "symlink", path: "a/link", target: "file" },
    { kind: "chardev", path: "a/console", major: 5, minor: 1 },
  ]);
  assertEquals(archive.length % 4, 0);
  const list = await busyboxCpio(["-tv"], archive);
  assert(list.ok, list.err);
  const rows = list.out.trim().split("\n").map((l) => l.split(/\s+/));
  assertEquals(rows.map((r) => [r[0], r[r.length - 1]]), [
    ["drwxr-x---", "a"],
    ["-rw-r-----", "a/file"],
    ["-rw-r--r--", "a/empty"],
    ["lrwxrwxrwx", "file"], // "a/link -> file"
    ["crw-------", "a/console"],
  ]);
  assert(list.out.includes("a/link -> file"));
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-cpio-" });
  try {
    const x = await busyboxCpio(["-id", "a/file"], archive, dir);
    assert(x.ok, x.err);
    assertEquals(await Deno.readFile(`${dir}/a/file`), data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cpio: bad and duplicate paths are refused", () => {
  for (const path of ["", "/", "a/../b", "TRAILER!!!"]) {
    let threw = false;
    try {
      newc([{ kind: "dir", path }]);
    } catch (e) {
      threw = e instanceof RangeError;
    }
    assert(threw, `"${path}" accepted`);
  }
  let dup = false;
  try {
    newc([{ kind: "dir", path: "a" }, { kind: "dir", path: "/a" }]);
  } catch (e) {
    dup = e instanceof RangeError;
  }
  assert(dup, "a duplicate path accepted");
});

Deno.test("initramfs: busybox, its applet links, /dev/console and init; built reproducibly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-initramfs-" });
  try {
    const out = `${dir}/i.cpio.gz`;
    const r = await buildInitramfs({ out });
    assert(r.applets > 100, `${r.applets} applets`);
    const first = await Deno.readFile(out);
    const mtime = (await Deno.stat(out)).mtime;
    await buildInitramfs({ out });
    assertEquals(await Deno.readFile(out), first, "same inputs, same bytes");
    assertEquals((await Deno.stat(out)).mtime, mtime, "an unchanged archive is not rewritten");
    const list = await busyboxCpio(["-tv"], await gunzip(first));
    assert(list.ok, list.err);
    const names = list.out.trim().split("\n").map((l) => l.split(/\s+/).slice(-1)[0]);
    for (const n of ["init", "bin/busybox", "dev/console", "proc", "sys"]) {
      assert(names.includes(n), `${n} missing`);
    }
    assert(/crw------- .* dev\/console/.test(list.out));
    assert(/-rwxr-xr-x .* init/.test(list.out));
    assert(list.out.includes("bin/sh -> busybox"));
    assert(list.out.includes("bin/poweroff -> busybox"));
    assertEquals(
      [...Deno.readDirSync(dir)].length,
      1,
      "no temporary file left beside the output",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("initramfs: a dynamically linked busybox (or none) is refused with a hint", async () => {
  assert(isStaticElf(await Deno.readFile(DEFAULT_BUSYBOX)), `${DEFAULT_BUSYBOX} is static`);
  const dynamic = Deno.execPath(); // deno itself: dynamically linked
  assert(!isStaticElf(await Deno.readFile(dynamic)));
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-initramfs-" });
  try {
    for (const busybox of [dynamic, `${dir}/missing`]) {
      await rejects(
        buildInitramfs({ busybox, out: `${dir}/x.cpio.gz` }),
        (e: unknown) => e instanceof InitramfsError && /busybox-static/.test(e.hint),
      );
    }
    assertEquals([...Deno.readDirSync(dir)], [], "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cpio: gzip output is what DecompressionStream reads", async () => {
  const bytes = newc([{ kind: "dir", path: "x" }]);
  assertEquals(await gunzip(await gzip(bytes)), bytes);
});
