/** The newc writer, checked by a real cpio reader (busybox's) extracting what it wrote. */
import { equal } from "node:assert/strict";
import { CpioWriter } from "./cpio.ts";
import { skipReason } from "../skip.ts";

const skip = skipReason("cpio round trip", { tools: ["busybox"] });

Deno.test({
  name: "cpio: busybox extracts directories, files (in memory and streamed), links, modes",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-cpio-" });
    try {
      // A host file larger than the writer's 1 MiB read buffer, of a length that needs padding.
      const big = new Uint8Array(3 * 2 ** 20 + 5).map((_, i) => (i * 7 + 3) & 0xff);
      await Deno.writeFile(`${dir}/big.bin`, big);
      const parts: Uint8Array[] = [];
      const w = new CpioWriter((b) => {
        parts.push(b.slice());
        return Promise.resolve();
      });
      await w.directory("/a", { mode: 0o750 });
      await w.file("/a/hello.txt", new TextEncoder().encode("hello\n"), { mode: 0o640 });
      await w.file("/a/odd", new Uint8Array([1, 2, 3]), { mode: 0o755 });
      await w.symlink("/a/link", "hello.txt");
      await w.hostFile("/a/big.bin", `${dir}/big.bin`, big.length);
      await w.file("/a/empty", new Uint8Array(0));
      await w.finish();
      const archive = new Uint8Array(w.size);
      let at = 0;
      for (const p of parts) {
        archive.set(p, at);
        at += p.length;
      }
      equal(archive.length % 4, 0);
      await Deno.mkdir(`${dir}/out`);
      const child = new Deno.Command("busybox", {
        args: ["cpio", "-i", "-d"],
        cwd: `${dir}/out`,
        stdin: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(archive);
      await writer.close();
      const r = await child.output();
      equal(r.code, 0, new TextDecoder().decode(r.stderr));
      const out = `${dir}/out/a`;
      equal(await Deno.readTextFile(`${out}/hello.txt`), "hello\n");
      equal((await Deno.stat(`${out}/hello.txt`)).mode! & 0o777, 0o640);
      equal((await Deno.stat(`${out}/odd`)).mode! & 0o777, 0o755);
      equal((await Deno.stat(out)).mode! & 0o777, 0o750);
      equal(await Deno.readLink(`${out}/link`), "hello.txt");
      equal((await Deno.readFile(`${out}/big.bin`)).toString(), big.toString());
      equal((await Deno.stat(`${out}/empty`)).size, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cpio: a host file that changes length while packed is an error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-cpio-" });
  try {
    await Deno.writeFile(`${dir}/f`, new Uint8Array(10));
    const w = new CpioWriter(() => Promise.resolve());
    let error = "";
    await w.hostFile("/f", `${dir}/f`, 20).catch((e) => error = e.message);
    equal(error, `${dir}/f shrank while it was packed`);
    await w.hostFile("/g", `${dir}/f`, 5).catch((e) => error = e.message);
    equal(error, `${dir}/f grew while it was packed`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
