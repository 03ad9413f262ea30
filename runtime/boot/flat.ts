/**
 * Flat binaries: the file's bytes at `load_address`, first instruction at `entry`, in
 * 32-bit protected mode (flat 4 GiB segments, paging off) or real mode (CS base 0).
 */
import { RuntimeError } from "../errors.ts";
import { type BootContext, requireRam } from "./mod.ts";

export function bootFlat(ctx: BootContext): void {
  const b = ctx.plan.boot;
  if (b.load_address === null || b.entry === null) {
    throw new RuntimeError(
      "E1006",
      "flat boot needs load_address and entry in the Plan",
      "set `load` and `entry` in the boot block",
    );
  }
  const bytes = ctx.readPayload(b.path);
  requireRam(ctx.memory, b.load_address, bytes.length, `flat payload ${b.path}`);
  ctx.memory.write(b.load_address, bytes);
  const stack = b.layout.stack_top;
  if (b.cpu_mode === "real") {
    if (b.entry > 0xffff) {
      throw new RuntimeError(
        "E1006",
        `real-mode entry 0x${b.entry.toString(16)} is above 64 KiB`,
        "load real-mode code below 0x10000",
      );
    }
    ctx.vcpu.enterRealMode();
    ctx.vcpu.setGeneral({ rip: b.entry, rsp: stack & 0xffff });
  } else {
    ctx.vcpu.enterProtectedMode(b.layout.gdt_addr, ctx.memory);
    ctx.vcpu.setGeneral({ rip: b.entry, rsp: stack });
  }
}
