/**
 * `boot pvh` for Linux kernels as distributions ship them: when the payload is a bzImage
 * (a vmlinuz), the vmlinux ELF inside it is taken out (its lz4 or gzip payload
 * decompressed here, no host tool) and entered through its PVH note. That skips the
 * bzImage's own decompressor, which on a slow (emulated) KVM takes most of the boot.
 * Any other payload goes to the PVH loader unchanged.
 */
import { RuntimeError } from "../errors.ts";
import { extractVmlinux, isBzImage, parseBzImage } from "./bzimage.ts";
import type { BootContext } from "./mod.ts";
import { bootPvh } from "./pvh.ts";

export async function bootPvhKernel(ctx: BootContext): Promise<void> {
  const path = ctx.plan.boot.path;
  const bytes = ctx.readPayload(path);
  if (!isBzImage(bytes)) {
    return bootPvh({
      ...ctx,
      readPayload: (p, what) => p === path ? bytes : ctx.readPayload(p, what),
    });
  }
  const abs = ctx.resolve(path);
  const elf = await extractVmlinux(parseBzImage(bytes, abs), abs);
  try {
    await bootPvh({
      ...ctx,
      readPayload: (p, what) => p === path ? elf : ctx.readPayload(p, what),
    });
  } catch (e) {
    if (e instanceof RuntimeError && e.code === "E1012") {
      throw new RuntimeError(
        "E1012",
        `the vmlinux inside the bzImage ${abs} has no PVH entry note (a kernel built without CONFIG_PVH?)`,
        "boot this kernel with `boot linux`, which runs its own decompressor",
      );
    }
    throw e;
  }
}
