/**
 * The part of a virtio device both transports share (virtio 1.2, sections 2 and 3): the
 * device status state machine, feature negotiation, the virtqueues, and what happens when
 * a queue is notified. A transport (pci.ts, mmio.ts) maps its registers onto this core and
 * delivers the interrupts it asks for; a device (blk/, rng/) is a `VirtioBackend` that
 * answers one request chain at a time.
 *
 * Requests are served synchronously, on the thread that hosts the device models, inside
 * the exit of the notify itself: when the guest's notify write returns, its requests are
 * done and the interrupt is raised (ARCHITECTURE.md, "Virtio notifications", says why).
 * So a paused machine has no request in flight, and closing one loses nothing.
 *
 * A hostile or broken driver: every fault is counted by kind (in `stats()`, which
 * `--stats` prints) and warned about once per kind and device; the VMM carries on.
 * - A bad chain fails alone: returned with nothing written (used length 0).
 * - A broken ring (the available index running ahead, a head out of range), a queue the
 *   device cannot use (size, rings outside RAM, misaligned), a status the driver may not
 *   write (clearing bits, DRIVER_OK without FEATURES_OK), or a notify before DRIVER_OK:
 *   the device sets NEEDS_RESET, raises a configuration-change interrupt, and serves
 *   nothing more until the driver resets it.
 */
import type { AccessSize, Device, DeviceContext, DiskImage, GuestRam } from "../device.ts";
import type { VirtioPlan } from "../../../plan/types.ts";
import { type Chain, type Fault, type FaultKind, SplitQueue } from "./queue.ts";
import { bit, F, STATUS } from "./spec.ts";

/** A virtio device behind either transport: what makes a block device a block device. */
export interface VirtioBackend {
  /** Device-specific feature bits offered (the core adds VERSION_1, INDIRECT_DESC, EVENT_IDX). */
  readonly features: bigint;
  /** Bytes of device-specific configuration. */
  readonly configSize: number;
  /** A little-endian read of the configuration (offset + size <= configSize). */
  readConfig(offset: number, size: AccessSize): number;
  writeConfig(offset: number, size: AccessSize, value: number): void;
  /**
   * Serves one well-formed chain of queue `queue`; returns the bytes written into its
   * device-writable buffers (the used length).
   */
  handle(queue: number, chain: Chain): number;
  /** The driver reset the device. */
  reset(): void;
  /** The model's counters for `--stats`. */
  stats(): Record<string, number>;
  /** Release what the backend holds (flush a disk). */
  close(): void;
  /**
   * Receive queues (console input): the device fills their buffers when it has something
   * for the guest, so a chain is taken from one only while `pending(queue)` is true; the
   * others wait in the ring, however often the driver notifies. The backend calls
   * `receive` (given by `attach`) when something arrives.
   */
  readonly receiveQueues?: readonly number[];
  pending?(queue: number): boolean;
  /** The periodic kick (every ~100 ms on vCPU 0's thread): look at the host side again. */
  tick?(): void;
  /** A disk: serve from `image` from now on (Device.swapImage; the transport raises the change). */
  swapImage?(image: DiskImage): void;
  /**
   * A device that also fills queues unasked (virtio-net's receive queue, from the host's
   * side; a console's receive queue when input arrives: `receive`) or changes its
   * configuration (`configChanged`) gets the core once, right after it is made.
   */
  attach?(core: VirtioCore): void;
  /**
   * The driver notified `queue`: true when the backend took care of it itself (a receive
   * queue's buffers wait for frames), false to have the core serve it chain by chain.
   */
  notify?(queue: number): boolean;
  /** The models' thread was kicked (`Device.poll`): take in host-side work. */
  poll?(): void;
  /** The driver set DRIVER_OK: the negotiated features are final. */
  activate?(): void;
}

/** How a transport delivers what the core raises. */
export interface VirtioInterrupts {
  /** Used buffers were added to `queue` and the driver wants to hear of it. */
  queue(queue: SplitQueue): void;
  /** The configuration or the status changed (NEEDS_RESET). */
  config(): void;
  /** The device was reset: drop whatever interrupt state the transport holds. */
  reset(): void;
}

/** Faults of the device as a whole (queue faults are FaultKind). */
export type DeviceFaultKind =
  | FaultKind
  | "notify_before_driver_ok"
  | "notify_queue_index"
  | "status_protocol"
  | "register_access";

const OUTCOME: Record<"chain" | "reset" | "ignored", string> = {
  chain: "the request fails (returned with nothing written)",
  reset: "the device needs a reset (NEEDS_RESET)",
  ignored: "ignored",
};

/** Entries served per notify at most: a sane driver never has more than a ring's worth. */
const BATCH_RINGS = 2;

export class VirtioCore {
  readonly queues: SplitQueue[];
  readonly offered: bigint;
  status = 0;
  driverFeatures = 0n;
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  queueSelect = 0;
  configGeneration = 0;
  /** The driver wrote feature bits above 63 (none are offered). */
  #unknownFeatures = false;
  readonly #faults = new Map<DeviceFaultKind, number>();
  readonly #counters = { notifies: 0, chains: 0, used_interrupts: 0, config_interrupts: 0 };
  #irq: VirtioInterrupts | null = null;
  readonly #receiveQueues: ReadonlySet<number>;

  constructor(
    /** "virtio_blk disk0": how warnings name the device. */
    readonly label: string,
    plan: VirtioPlan,
    readonly backend: VirtioBackend,
    readonly ram: GuestRam,
    readonly ctx: Pick<DeviceContext, "warn">,
  ) {
    this.queues = plan.queue_sizes.map((n, i) => new SplitQueue(i, n));
    this.offered = bit(F.VERSION_1) | bit(F.INDIRECT_DESC) | bit(F.EVENT_IDX) | backend.features;
    this.#receiveQueues = new Set(backend.receiveQueues ?? []);
    backend.attach?.(this);
  }

  /** The transport's interrupt delivery (set once, right after construction). */
  setInterrupts(irq: VirtioInterrupts): void {
    this.#irq = irq;
  }

  /** Counts a fault and warns about its kind once. */
  fault(kind: DeviceFaultKind, detail: string, outcome: keyof typeof OUTCOME): void {
    const n = (this.#faults.get(kind) ?? 0) + 1;
    this.#faults.set(kind, n);
    if (n === 1) {
      this.ctx.warn(
        `${this.label}: ${detail}: ${OUTCOME[outcome]} (reported once; \`--stats\` counts every ${
          kind.replaceAll("_", " ")
        })`,
      );
    }
  }

  /** The device stops until reset and tells the driver so. */
  needsReset(kind: DeviceFaultKind, detail: string): void {
    this.fault(kind, detail, "reset");
    if (this.status & STATUS.NEEDS_RESET) return;
    this.status |= STATUS.NEEDS_RESET;
    this.raiseConfig();
  }

  raiseConfig(): void {
    // Only a driver that got as far as DRIVER_OK listens to configuration interrupts.
    if (!(this.status & STATUS.DRIVER_OK)) return;
    this.#counters.config_interrupts++;
    this.#irq?.config();
  }

  /** The device's configuration changed (a disk swapped while paused, say). */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) & 0xff;
    this.raiseConfig();
  }

  deviceFeatureWindow(): number {
    const s = this.deviceFeatureSelect;
    if (s > 1) return 0;
    return Number((this.offered >> BigInt(32 * s)) & 0xffff_ffffn);
  }

  writeDriverFeatures(value: number): void {
    if (this.status & STATUS.FEATURES_OK) return; // fixed once accepted
    const s = this.driverFeatureSelect;
    if (s > 1) {
      if (value !== 0) this.#unknownFeatures = true;
      return;
    }
    const shift = BigInt(32 * s);
    const mask = 0xffff_ffffn << shift;
    this.driverFeatures = (this.driverFeatures & ~mask) | (BigInt(value >>> 0) << shift);
  }

  negotiated(f: number): boolean {
    return (this.driverFeatures & bit(f)) !== 0n;
  }

  /** A write of the status register (both transports). */
  writeStatus(value: number): void {
    value &= 0xff;
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.status & ~STATUS.NEEDS_RESET;
    if ((old & ~value) !== 0) {
      this.needsReset(
        "status_protocol",
        `the driver cleared status bits (0x${old.toString(16)} → 0x${value.toString(16)})`,
      );
      return;
    }
    let next = value & ~STATUS.NEEDS_RESET;
    if ((next & STATUS.FEATURES_OK) && !(old & STATUS.FEATURES_OK)) {
      // Accept only what was offered, and only as a virtio 1.x driver (no legacy).
      const ok = !this.#unknownFeatures && (this.driverFeatures & ~this.offered) === 0n &&
        this.negotiated(F.VERSION_1);
      if (!ok) next &= ~STATUS.FEATURES_OK;
    }
    if ((next & STATUS.DRIVER_OK) && !(next & STATUS.FEATURES_OK)) {
      this.needsReset("status_protocol", "the driver set DRIVER_OK without FEATURES_OK");
      return;
    }
    const wasOk = (this.status & STATUS.DRIVER_OK) !== 0;
    this.status = next | (this.status & STATUS.NEEDS_RESET);
    if (!wasOk && (next & STATUS.DRIVER_OK)) this.backend.activate?.();
  }

  /** Whether the device may use its queues: DRIVER_OK, and not stopped (NEEDS_RESET, FAILED). */
  get live(): boolean {
    return (this.status & (STATUS.DRIVER_OK | STATUS.NEEDS_RESET | STATUS.FAILED)) ===
      STATUS.DRIVER_OK;
  }

  reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.#unknownFeatures = false;
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
    for (const q of this.queues) q.reset();
    this.backend.reset();
    this.#irq?.reset();
  }

  /** The selected queue, or null when queue_select names none. */
  get selected(): SplitQueue | null {
    return this.queues[this.queueSelect] ?? null;
  }

  /** The driver enabled queue `q` (PCI queue_enable, MMIO QueueReady). */
  enableQueue(q: SplitQueue): void {
    if (q.ready) return;
    const fault = q.enable(this.ram, {
      eventIdx: this.negotiated(F.EVENT_IDX),
      indirect: this.negotiated(F.INDIRECT_DESC),
    });
    if (fault) this.needsReset(fault.kind, fault.detail);
  }

  /** The driver notified queue `index`: serve what it made available. */
  notify(index: number): void {
    this.#counters.notifies++;
    const s = this.status;
    if (s & (STATUS.NEEDS_RESET | STATUS.FAILED)) return; // stopped until reset
    if (!(s & STATUS.DRIVER_OK)) {
      this.needsReset(
        "notify_before_driver_ok",
        `queue ${index} notified before the driver set DRIVER_OK`,
      );
      return;
    }
    const queue = this.queues[index];
    if (!queue) {
      this.fault("notify_queue_index", `notify of queue ${index}, which does not exist`, "ignored");
      return;
    }
    if (!queue.ready) return; // nothing to serve until the driver enables it
    if (this.backend.notify?.(index)) return;
    this.serve(queue);
  }

  /**
   * The backend has something for receive queue `index`: fill the buffers the driver gave
   * (nothing happens before DRIVER_OK or after a fault; the backend keeps what it holds).
   */
  receive(index: number): void {
    const s = this.status;
    if ((s & (STATUS.NEEDS_RESET | STATUS.FAILED)) || !(s & STATUS.DRIVER_OK)) return;
    const queue = this.queues[index];
    if (queue?.ready) this.serve(queue);
  }

  /** Serves every available chain of `queue`, then interrupts the driver if it wants. */
  serve(queue: SplitQueue): void {
    const oldUsed = queue.usedIdx;
    const limit = BATCH_RINGS * queue.size;
    const receive = this.#receiveQueues.has(queue.index);
    for (let n = 0; n < limit; n++) {
      // A receive buffer stays in the ring until there is something to put in it.
      if (receive && !this.backend.pending?.(queue.index)) break;
      const p = queue.pop(this.ram);
      if (p === null) {
        // EVENT_IDX: ask for the next notify, then look once more (the driver may have
        // added a buffer after our last look but before it read avail_event).
        queue.publishAvailEvent();
        if (queue.hasAvailable()) continue;
        break;
      }
      if ("fatal" in p) {
        this.#fatal(p.fatal);
        break;
      }
      this.#counters.chains++;
      if ("fault" in p) {
        this.fault(p.fault.kind, p.fault.detail, "chain");
        queue.push(p.head, 0);
        continue;
      }
      queue.push(p.head, this.backend.handle(queue.index, p));
    }
    this.usedAdded(queue, oldUsed);
  }

  /**
   * Used entries oldUsed..usedIdx were added to `queue` (by serve, or by a backend filling
   * a queue unasked): interrupt the driver if it wants to hear of them.
   */
  usedAdded(queue: SplitQueue, oldUsed: number): void {
    if (queue.needsInterrupt(oldUsed)) {
      this.#counters.used_interrupts++;
      this.#irq?.queue(queue);
    }
  }

  #fatal(f: Fault): void {
    this.needsReset(f.kind, f.detail);
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.#counters, ...this.backend.stats() };
    for (const [k, n] of this.#faults) out[`fault_${k}`] = n;
    return out;
  }

  /** Faults counted so far, by kind (tests). */
  get faults(): ReadonlyMap<DeviceFaultKind, number> {
    return this.#faults;
  }
}

/**
 * The Device hooks a transport passes through to its backend alike (PCI and MMIO): the
 * periodic kick, close, a disk's image swap (its capacity changed, and the driver hears so),
 * and host-side work an I/O thread woke vCPU 0 for.
 */
export function backendHooks(
  core: VirtioCore,
): Pick<Device, "flush" | "close" | "swapImage" | "poll"> {
  const backend = core.backend;
  return {
    flush() {
      backend.tick?.(); // the periodic kick: a backend looks at the host side again
    },
    close() {
      backend.close();
    },
    swapImage: backend.swapImage
      ? (image) => {
        backend.swapImage!(image);
        core.configChanged();
      }
      : undefined,
    ...(backend.poll ? { poll: () => backend.poll!() } : {}),
  };
}
