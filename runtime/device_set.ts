/**
 * vCPU 0's device models, built from the Plan: the models themselves, the AddressMap the
 * run loop dispatches through, the models' flush hooks, and where stdin bytes go.
 *
 * One place for this, whichever thread hosts vCPU 0 (threads/vcpu_thread.ts), and the one
 * place a DeviceContext is made: what the models get from the machine (interrupts, guest
 * RAM, the shadow hole's config pages, disk images, warnings, output, stop requests). Under
 * the `shadow` hole strategy, memory hands out the present functions' config pages and the
 * device presenting a function claims its page here; a Plan listing pages without a device
 * for them is refused. PCI functions with a model of their own (virtio) are built first,
 * and the host bridge presents them through `ctx.pciEndpoint`.
 */
import type { Plan } from "../plan/types.ts";
import { AddressMap } from "./address_map.ts";
import type {
  Device,
  DeviceContext,
  DeviceFactory,
  DiskImage,
  InputSource,
  PciEndpoint,
  PciFunctionFactory,
  VcpuWaker,
} from "./devices/device.ts";
import { DEVICE_MODELS, PCI_FUNCTION_DEVICES } from "./devices/registry.ts";
import type { GuestMemory } from "./memory/mod.ts";
import { shadowConfigPages } from "./memory/ones_alias.ts";
import { RuntimeError } from "./errors.ts";
import type { DeviceStats } from "./stats.ts";
import type { RunLoop } from "./run_loop.ts";

/** What the models need from the thread that hosts them. */
export interface DeviceHost {
  setIrq: DeviceContext["setIrq"];
  signalMsi: DeviceContext["signalMsi"];
  /** Lazily bound: the run loop is built after the models. */
  requestStop: DeviceContext["requestStop"];
  output: DeviceContext["output"];
  warn: DeviceContext["warn"];
  /** Every memslot as the VMM maps it (the models get its RAM-only form). */
  memory: GuestMemory;
  /** The device id that gets the machine's stdin, or null. */
  stdinDevice: string | null;
  /** Disk images the machine opened, by device id (runtime/io/disk_images.ts). */
  disks?: readonly DiskImage[];
  /** Console device ids whose output is shown on a terminal. */
  terminals?: readonly string[];
  /** How an I/O thread kicks the models' thread (`DeviceContext.waker`). */
  waker?: VcpuWaker;
}

export class DeviceSet {
  readonly devices: Device[];
  readonly map: AddressMap;
  readonly #inputSinks: ((b: Uint8Array) => void)[];
  readonly #polled: Device[];
  #closed = false;

  private constructor(devices: Device[], inputSinks: ((b: Uint8Array) => void)[]) {
    this.devices = devices;
    this.#inputSinks = inputSinks;
    this.#polled = devices.filter((d) => d.poll);
    this.map = new AddressMap(devices);
  }

  /**
   * Builds every model in the Plan (from `models`, the registry unless a test gives its
   * own); on failure, closes the ones already built.
   */
  static build(
    plan: Plan,
    host: DeviceHost,
    models: ReadonlyMap<string, DeviceFactory> = DEVICE_MODELS,
    pciModels: ReadonlyMap<string, PciFunctionFactory> = PCI_FUNCTION_DEVICES,
  ): DeviceSet {
    const sinks: ((b: Uint8Array) => void)[] = [];
    const disks = new Map((host.disks ?? []).map((d) => [d.id, d]));
    const terminals = new Set(host.terminals ?? []);
    const endpoints = new Map<string, PciEndpoint>();
    /** Endpoints the host bridge asked for (each must be presented). */
    const presented = new Set<string>();
    const shadow = plan.memslots.some((m) => m.backing.kind === "ones_alias");
    const pages = shadow ? shadowConfigPages(plan, host.memory) : new Map<string, Uint8Array>();
    /** Whether any model presents PCI functions (asked for their pages). */
    let presenter = false;
    const ctx: DeviceContext = {
      setIrq: host.setIrq,
      signalMsi: host.signalMsi,
      requestStop: host.requestStop,
      output: host.output,
      warn: host.warn,
      now: () => performance.now(),
      disk: (id) => disks.get(id),
      terminalSize: (id) => terminals.has(id) ? terminalSize() : null,
      waker: host.waker,
      pciEndpoint: (bdf) => {
        const e = endpoints.get(bdf.toLowerCase());
        if (e) presented.add(bdf.toLowerCase());
        return e;
      },
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
      memory: host.memory.ram(),
      shadowConfigPage: shadow
        ? (bdf) => {
          presenter = true;
          return pages.get(bdf.toLowerCase());
        }
        : undefined,
    };
    const devices: Device[] = [];
    try {
      // PCI functions with models of their own first: the host bridge presents them.
      for (const fn of plan.pci) {
        const make = pciModels.get(fn.kind);
        if (!make || !fn.virtio) continue; // a config-space header only
        let dev;
        try {
          dev = make(fn, ctx, plan);
        } catch (e) {
          if (e instanceof RuntimeError) throw e;
          throw new RuntimeError(
            "E1006",
            `pci ${fn.bdf} (${fn.kind}): ${(e as Error)?.message ?? String(e)}`,
            "check this function's entry in the Plan (bars, virtio)",
          );
        }
        devices.push(dev);
        endpoints.set(fn.bdf.toLowerCase(), dev.endpoint);
      }
      for (const entry of plan.devices) {
        const make = models.get(entry.kind);
        if (!make) {
          throw new RuntimeError(
            "E1006",
            `device ${entry.id}: no runtime model for kind "${entry.kind}"`,
            `known kinds: ${[...models.keys()].join(", ")}`,
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
      // Pages for functions no device presents read as all-ones, like absent functions;
      // pages and no device at all to present them is a broken Plan.
      if (pages.size > 0 && !presenter) {
        throw new RuntimeError(
          "E1006",
          "the Plan has shadow config pages but no pci_host device",
          "a pci_hole implies the pci_host device",
        );
      }
      for (const bdf of endpoints.keys()) {
        if (!presented.has(bdf)) {
          throw new RuntimeError(
            "E1006",
            `PCI function ${bdf} has a model but no PCI host bridge presents it`,
            "a pci_hole implies the pci_host device, which presents every PCI function",
          );
        }
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

  /**
   * Block device `id` takes `image` (the machine is paused: vCPU 0 is parked, so no
   * request is in flight). Throws when no model of that id takes images.
   */
  swapImage(id: string, image: DiskImage): void {
    const d = this.devices.find((d) => d.id.toLowerCase() === id.toLowerCase());
    if (!d?.swapImage) throw new Error(`no block device '${id}' among the models`);
    d.swapImage(image);
  }

  /** Host-side work the models were woken for (`Device.poll`): at every kick. */
  poll(): void {
    for (const d of this.#polled) d.poll!();
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

/** The size of the process's terminal, or null when it has none (or it reads as 0×0). */
function terminalSize(): { cols: number; rows: number } | null {
  try {
    const { columns, rows } = Deno.consoleSize();
    return columns > 0 && rows > 0 ? { cols: columns, rows } : null;
  } catch {
    return null; // no terminal any more (detached)
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
