/**
 * The initramfs of the Linux device tests (linux_virtio_test.ts, linux_net_test.ts): busybox,
 * the test's own init, and modules of Debian's kernel package with `lib/modules/order`, the
 * order the init loads them in. Built in a temp dir the test removes at its end.
 */
import { kernelOrSkip, type Needs } from "../skip.ts";
import type { KernelModule } from "./kernel.ts";
import { buildInitramfs } from "../../examples/linux/initramfs/build.ts";
import type { CpioEntry } from "../../examples/linux/initramfs/cpio.ts";

export interface Setup {
  kernel: string;
  initramfs: string;
  dir: string;
}

export async function moduleInitramfs(opts: {
  /** What the tests are called in a skip line. */
  what: string;
  /** Beyond Linux and busybox. */
  needs?: Needs;
  /** The init script's path. */
  init: string;
  /** Loaded in this order. */
  modules: readonly KernelModule[];
  /** The temp dir's prefix. */
  prefix: string;
}): Promise<Setup | { skip: string }> {
  const busybox = Deno.env.get("VMDESC_BUSYBOX") ?? "/bin/busybox";
  const needs = opts.needs ?? {};
  const k = await kernelOrSkip(opts.what, {
    ...needs,
    linux: true,
    files: [...(needs.files ?? []), busybox],
  });
  if (k.skip !== null) return { skip: k.skip };
  const extra: CpioEntry[] = [
    { kind: "dir", path: "lib", mode: 0o755 },
    { kind: "dir", path: "lib/modules", mode: 0o755 },
    {
      kind: "file",
      path: "lib/modules/order",
      data: new TextEncoder().encode(opts.modules.join("\n")),
    },
  ];
  for (const m of opts.modules) {
    extra.push({
      kind: "file",
      path: `lib/modules/${m}.ko`,
      data: await Deno.readFile(k.kernel.modules[m]),
      mode: 0o644,
    });
  }
  const dir = await Deno.makeTempDir({ prefix: opts.prefix });
  const initramfs = `${dir}/initramfs.cpio.gz`;
  try {
    await buildInitramfs({ busybox, out: initramfs, init: opts.init, extra });
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  return { kernel: k.kernel.path, initramfs, dir };
}
