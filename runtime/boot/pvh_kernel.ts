/**
 * `boot pvh` for Linux kernels as distributions ship them: when the payload is a bzImage
 * (a vmlinuz), the vmlinux ELF inside it is taken out (its lz4 or gzip payload
 * decompressed here, no host tool) and entered through its PVH note. That skips the
 * bzImage's own decompressor, which on a slow (emulated) KVM takes most of the boot.
 * Any other payload goes to the PVH loader unchanged.
 */
import { extractVmlinux, isBzImage, parseBzImage } from "./bzimage.ts";
import type { BootContext } from "./mod.ts";
import { bootPvh } from "./pvh.ts";

export async function bootPvhKernel(ctx: BootContext): Promise<void> {
  const path = ctx.plan.boot.path;
  const bytes = ctx.readPayload(path);
  let payload = bytes;
  if (isBzImage(bytes)) {
    payload = await extractVmlinux(parseBzImage(bytes, ctx.resolve(path)), ctx.resolve(path));
  }
  await bootPvh({
    ...ctx,
    readPayload: (p: string, what?: string) => p === path ? payload : ctx.readPayload(p, what),
  });
}
