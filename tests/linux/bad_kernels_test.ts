/**
 * Kernels and initrds vmdesc must refuse, through the real `vmdesc boot` command: each
 * ends with a coded error, a hint, and exit status 10, before the guest runs a single
 * instruction. The payloads are crafted in a temp dir (see runtime/boot/bzimage_testing.ts).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { fakeBzImage, lz4Stored, tinyPvhElf } from "../../runtime/boot/bzimage_testing.ts";
import { skipReason } from "../skip.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const skip = skipReason("bad-kernel boot tests", { kvm: true });

const MiB = 2 ** 20;

async function boot(
  files: Record<string, Uint8Array>,
  bootBlock: string,
): Promise<{ code: number; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-badkernel-" });
  try {
    for (const [name, bytes] of Object.entries(files)) {
      await Deno.writeFile(`${dir}/${name}`, bytes);
    }
    await Deno.writeTextFile(
      `${dir}/m.vmdesc`,
      `machine m {\n  cpus 1\n  memory 128 MiB\n  device serial com1 { port 0x3f8 irq 4 }\n  ${bootBlock}\n}\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}cli/vmdesc.ts`, "boot", `${dir}/m.vmdesc`, "--timeout", "5"],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function expectError(r: { code: number; stderr: string }, code: string, hint: RegExp) {
  assertEquals(r.code, 10, r.stderr);
  assertMatch(r.stderr, new RegExp(`error\\[${code}\\]`));
  assertMatch(r.stderr, hint);
}

Deno.test({
  name: "bad kernels: an ELF given to `boot linux` is E1013 and points at `boot pvh`",
  ignore: skip !== null,
  async fn() {
    const r = await boot({ "vmlinux": tinyPvhElf() }, `boot linux "vmlinux"`);
    expectError(r, "E1013", /64-bit ELF[\s\S]*boot pvh/);
  },
});

Deno.test({
  name: "bad kernels: an old boot protocol is E1014, a truncated bzImage E1011",
  ignore: skip !== null,
  async fn() {
    expectError(
      await boot({ "old": fakeBzImage({ version: 0x0209 }) }, `boot linux "old"`),
      "E1014",
      /2\.9[\s\S]*help/,
    );
    const full = fakeBzImage();
    expectError(
      await boot({ "cut": full.subarray(0, full.length - 100) }, `boot linux "cut"`),
      "E1011",
      /truncated[\s\S]*copy the kernel again/,
    );
  },
});

Deno.test({
  name: "bad kernels: a bzImage for `boot pvh` whose vmlinux has no PVH note is E1012",
  ignore: skip !== null,
  async fn() {
    const bz = fakeBzImage({ payload: lz4Stored(tinyPvhElf(false)) });
    expectError(
      await boot({ "vmlinuz": bz }, `boot pvh "vmlinuz"`),
      "E1012",
      /vmlinux inside the bzImage[\s\S]*boot linux/,
    );
  },
});

Deno.test({
  name: "bad kernels: an initrd that does not fit below initrd_addr_max is E1015",
  ignore: skip !== null,
  async fn() {
    // Kernel at 16 MiB taking 16 MiB; initrds must end below 32 MiB: only 1..16 MiB is free.
    const bz = fakeBzImage({
      prefAddress: 16 * MiB,
      initSize: 16 * MiB,
      initrdAddrMax: 32 * MiB - 1,
    });
    const r = await boot(
      { "vmlinuz": bz, "initrd.img": new Uint8Array(16 * MiB) },
      `boot linux "vmlinuz" { initrd "initrd.img" }`,
    );
    expectError(r, "E1015", /initrd[\s\S]*more `memory`/);
  },
});
