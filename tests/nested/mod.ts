/**
 * The nested test bed: a real Linux KVM (Debian's kvm.ko + kvm-amd.ko on QEMU's emulated
 * SVM CPU) on any host, with or without /dev/kvm of its own. See ./README.md.
 *
 * ```ts
 * import { runInBed } from "./tests/nested/mod.ts";
 * const r = await runInBed({ command: ["deno", "test", "--allow-all", "tests/runtime/"] });
 * Deno.exit(r.status);
 * ```
 */
export { type BedImage, buildImage, type ImageOptions, TEST_TOOLS } from "./image.ts";
export {
  BedError,
  BedNotReady,
  runInBed,
  type RunOptions,
  type RunResult,
  shellQuote,
} from "./run.ts";
