/**
 * isa-debug-exit, as QEMU has it: a write of value v (any width) to the port ends the
 * machine, and the process exits with status (v << 1) | 1. The odd status can never be 0,
 * so a test can tell "the guest asked to exit" from "the VMM finished normally".
 * Reads return 0 (QEMU's behaviour). The size of the claimed range is the Plan's `size`
 * property (default 1). A `success` property names the value that ends it with status 0.
 */
import type { AccessSize, Device, DeviceContext, Space } from "../device.ts";
import type { DevicePlan, Plan, Range } from "../../../plan/types.ts";
import { invalidPlan } from "../errors.ts";

export function createDebugExit(entry: DevicePlan, ctx: DeviceContext, _plan: Plan): Device {
  const first = entry.ports[0];
  if (!first) {
    throw invalidPlan(`debug_exit ${entry.id}: no port range in the Plan`, "give it `port`");
  }
  const size = typeof entry.props.size === "number" ? entry.props.size : first.size;
  const ports: Range[] = [{ base: first.base, size }];
  let writes = 0, reads = 0;
  let lastValue = -1;
  // Test harnesses (like Rust's bootimage) name one value "success" so a passing guest
  // ends with status 0; every other value keeps QEMU's odd (v << 1) | 1.
  const success = typeof entry.props.success === "number" ? entry.props.success : null;
  return {
    id: entry.id,
    kind: entry.kind,
    ports,
    mmio: [],
    read(_space: Space, _addr: number, _size: AccessSize): number {
      reads++;
      return 0;
    },
    write(_space: Space, _addr: number, size: AccessSize, value: number): void {
      writes++;
      const mask = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
      lastValue = (value & mask) >>> 0;
      ctx.requestStop({ kind: "debug_exit", value: lastValue, success: lastValue === success });
    },
    reset(): void {
      lastValue = -1;
    },
    stats(): Record<string, number> {
      return { reads, writes, last_value: lastValue };
    },
    close(): void {
      // Holds nothing outside the JS heap.
    },
  };
}

/** The process exit status for a written value (one definition, in runtime/errors.ts). */
export { debugExitStatus } from "../../errors.ts";
