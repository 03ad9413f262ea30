/**
 * How a transport makes the device behind it (blk/, rng/): one factory per device kind,
 * given the device's id, its Plan entry and the context. The registry pairs each kind
 * with a transport: `virtioPci(createBlk)`, `virtioMmio(createBlk)`, ...
 */
import type { AccessSize, DeviceContext } from "../device.ts";
import type { VirtioPlan } from "../../../plan/types.ts";
import { invalidPlan } from "../errors.ts";
import type { VirtioBackend } from "./core.ts";
import { MAX_QUEUE_SIZE } from "./spec.ts";

export interface BackendArgs {
  /** The device's id: its DevicePlan id, or its PCI function's BDF (`ctx.disk` keys). */
  id: string;
  /** How messages name it: "virtio_blk disk0", "virtio_rng 00:05.0". */
  label: string;
  plan: VirtioPlan;
  ctx: DeviceContext;
}

export type BackendFactory = (args: BackendArgs) => VirtioBackend;

/** Queue sizes the split ring allows: 1..32768, powers of two (E1006 otherwise). */
export function checkQueueSizes(where: string, v: VirtioPlan): void {
  if (v.queue_sizes.length === 0) {
    throw invalidPlan(`${where}: a virtio device needs at least one queue`, "list queue_sizes");
  }
  for (const n of v.queue_sizes) {
    if (!Number.isInteger(n) || n < 1 || n > MAX_QUEUE_SIZE || (n & (n - 1)) !== 0) {
      throw invalidPlan(
        `${where}: virtio queue size ${n} is not a power of two up to ${MAX_QUEUE_SIZE}`,
        "use 256, as vmdesc lowers it",
      );
    }
  }
}

/**
 * A backend's `readConfig` over the device's configuration as bytes (little-endian, as
 * virtio configuration fields are); the transports have already checked offset + size.
 */
export function configReader(config: Uint8Array): (offset: number, size: AccessSize) => number {
  return (offset, size) => {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + config[offset + i];
    return v >>> 0;
  };
}
