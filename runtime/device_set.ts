/**
 * vCPU 0's device models, built from the Plan: the models themselves, the AddressMap the
 * run loop dispatches through, the models' flush hooks, and where stdin bytes go.
 *
 * One place for this, whichever thread vCPU 0 runs on: a vCPU worker (vcpu_worker.ts) or,
 * for a 1-vCPU machine run on the caller's thread, the main thread (machine.ts).
 */
import type { Plan } from "../plan/types.ts";
import { AddressMap } from "./address_map.ts";
import type { Device, DeviceContext, InputSource } from "./devices/device.ts";
import { DEVICE_MODELS } from "./devices/registry.ts";
import type { GuestMemory } from "./memory/mod.ts";
import { RuntimeError } from "./errors.ts";
import { bindShadowDevices } from "./memory/ones_alias.ts";
import type { DeviceStats } from "./stats.ts";
import type { RunLoop } from "./run_loop.ts";

/** What the models need from the thread that hosts them. */
export interface DeviceHost {
  setIrq(gsi: number, level: boolean): void;
  /** Lazily bound: the run loop is built after the models. */
  requestStop: DeviceContext["requestStop"];
  output(id: string, bytes: Uint8Array): void;
  memory: GuestMemory;
  /** The device id that gets the machine's stdin, or null. */
  stdinDevice: string | null;
}

export class DeviceSet {
  readonly devices: Device[];
  readonly map: AddressMap;
  readonly #inputSinks: ((b: Uint8Array) => void)[];
  #closed = false;

  private constructor(devices: Device[], inputSinks: ((b: Uint8Array) => void)[]) {
    this.devices = devices;
    this.#inputSinks = inputSinks;
    this.map = new AddressMap(devices);
  }

  /** Builds every model in the Plan; on failure, closes the ones already built. */
  static build(plan: Plan, host: DeviceHost): DeviceSet {
    const sinks: ((b: Uint8Array) => void)[] = [];
    const ctx: DeviceContext & { memory: GuestMemory } = {
      setIrq: host.setIrq,
      requestStop: host.requestStop,
      output: host.output,
      now: () => performance.now(),
      input: (id): InputSource | null =>
        id === host.stdinDevice
          ? {
            subscribe(onData) {
              sinks.push(onData);
              return () => {
                const i = sinks.indexOf(onData);
                if (i >= 0) sinks.splice(i, 1);
              };
            },
          }
          : null,
      memory: host.memory,
    };
    const devices: Device[] = [];
    try {
      for (const entry of plan.devices) {
        const make = DEVICE_MODELS.get(entry.kind);
        if (!make) {
          throw new RuntimeError(
            "E1006",
            `device ${entry.id}: no runtime model for kind "${entry.kind}"`,
            `known kinds: ${[...DEVICE_MODELS.keys()].join(", ")}`,
          );
        }
        try {
          devices.push(make(entry, ctx, plan));
        } catch (e) {
          // A model refusing its Plan entry (missing port, bad property) is a Plan problem.
          if (e instanceof RuntimeError) throw e;
          throw new RuntimeError(
            "E1006",
            `device ${entry.id} (${entry.kind}): ${(e as Error)?.message ?? String(e)}`,
            "check this device's entry in the Plan (ports, mmio, irq, props)",
          );
        }
      }
      // Under the `shadow` hole strategy the pci_host model keeps the present functions'
      // config pages inside the ones_alias memslot current.
      if (plan.memslots.some((m) => m.backing.kind === "ones_alias")) {
        bindShadowDevices(plan, devices, host.memory);
      }
      // The stdin device subscribed through ctx.input while it was built.
      return new DeviceSet(devices, sinks);
    } catch (e) {
      closeAll(devices);
      throw e;
    }
  }

  /** Bytes from the machine's stdin, to the device that subscribed to it. */
  deliver(bytes: Uint8Array): void {
    for (const sink of this.#inputSinks) sink(bytes);
  }

  /**
   * Models that buffer output (the UART keeps TX until a newline) hand over what they hold,
   * so a prompt without a newline shows up while the guest sits in HLT waiting for input.
   */
  flush(): void {
    for (const d of this.devices) d.flush?.();
  }

  /** Per-device exit counts (from the loop's counters) and each model's own numbers. */
  stats(loop: RunLoop): DeviceStats[] {
    return this.devices.map((d, i) => ({
      id: d.id,
      kind: d.kind,
      pio_exits: loop.counters.device[i * 2],
      mmio_exits: loop.counters.device[i * 2 + 1],
      model: d.stats(),
    }));
  }

  /** Models release what they hold (and flush buffered output) exactly once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inputSinks.length = 0;
    closeAll(this.devices);
  }
}

function closeAll(devices: Device[]): void {
  for (const d of devices) {
    try {
      d.close?.();
    } catch {
      // a model failing to close must not hide the run's outcome
    }
  }
}
