/**
 * Boot dispatcher: a map from the Plan's boot protocol to a loader. A loader gets a
 * `BootContext` (the Plan, bounds-checked guest memory, the boot vCPU with register
 * setters for real, 32-bit protected and 64-bit long mode, and a payload reader that turns
 * file problems into E1010), writes the payload and boot data into guest memory and sets
 * the boot vCPU's registers. Loaders are imported lazily: a flat guest never loads the ELF
 * or Linux code. The `linux` loader lives in `./linux.ts` (exporting `bootLinux`); `pvh`
 * also accepts a bzImage (`./pvh_kernel.ts` extracts the vmlinux inside).
 */
import type { BootProtocol, Plan } from "../../plan/types.ts";
import type { GuestMemory } from "../memory/mod.ts";
import type { Vcpu } from "../kvm/vcpu.ts";
import { RuntimeError } from "../errors.ts";

export interface BootContext {
  plan: Plan;
  memory: GuestMemory;
  /** vCPU 0; APs are started by the guest (INIT/SIPI through the in-kernel LAPIC). */
  vcpu: Vcpu;
  /** Absolute path of a payload named in the Plan (relative paths → the Plan's directory). */
  resolve(path: string): string;
  /** Reads a payload file; missing or unreadable → E1010. */
  readPayload(path: string, what?: string): Uint8Array;
}

export type BootLoader = (ctx: BootContext) => void | Promise<void>;

/** protocol → lazy loader. Add a protocol with one entry here. */
export const BOOT_LOADERS: Map<BootProtocol, () => Promise<BootLoader>> = new Map<
  BootProtocol,
  () => Promise<BootLoader>
>([
  // pvh_kernel.ts takes the vmlinux out of a bzImage first, then hands over to pvh.ts.
  ["pvh", async () => (await import("./pvh_kernel.ts")).bootPvhKernel],
  ["flat", async () => (await import("./flat.ts")).bootFlat],
  ["linux", async () => (await import("./linux.ts")).bootLinux],
]);

export function isAbsolute(p: string): boolean {
  return p.startsWith("/");
}

export function joinPath(dir: string, p: string): string {
  if (isAbsolute(p)) return p;
  return (dir.endsWith("/") ? dir : dir + "/") + p;
}

/** Loads the Plan's boot payload into the VM and sets the boot vCPU's registers. */
export async function boot(
  plan: Plan,
  memory: GuestMemory,
  vcpu: Vcpu,
  baseDir: string,
): Promise<void> {
  const get = BOOT_LOADERS.get(plan.boot.protocol);
  if (!get) {
    throw new RuntimeError(
      "E1006",
      `unknown boot protocol "${plan.boot.protocol}"`,
      "boot protocols are pvh, linux and flat",
    );
  }
  const loader = await get();
  const resolve = (p: string) => joinPath(baseDir, p);
  await loader({
    plan,
    memory,
    vcpu,
    resolve,
    readPayload(path: string, what = "boot payload") {
      const abs = resolve(path);
      try {
        return Deno.readFileSync(abs);
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound
          ? "not found"
          : e instanceof Deno.errors.PermissionDenied
          ? "not readable (permission denied)"
          : e instanceof Deno.errors.IsADirectory
          ? "a directory"
          : `unreadable (${(e as Error).message})`;
        throw new RuntimeError(
          "E1010",
          `${what} ${abs} is ${why}`,
          "check the path in the `boot` block, or pass --kernel PATH",
        );
      }
    },
  });
}

/** E1016 unless [addr, addr+len) lies in guest RAM. */
export function requireRam(memory: GuestMemory, addr: number, len: number, what: string): void {
  if (len > 0 && !memory.isRam(addr, len)) {
    throw new RuntimeError(
      "E1016",
      `${what} at 0x${addr.toString(16)}..0x${(addr + len).toString(16)} does not fit in guest RAM`,
      "give the machine more `memory`, or load the payload at an address inside RAM",
    );
  }
}
