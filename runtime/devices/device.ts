/**
 * The one interface every device model implements.
 *
 * A device claims port (PIO) and MMIO ranges; the run loop builds one address map from
 * all devices once, at start, and dispatches each exit to exactly one device. Accesses
 * are 1, 2 or 4 bytes wide (the run loop splits 8-byte MMIO accesses into two 4-byte
 * halves, low address first), and `addr` is absolute (port number or guest-physical).
 *
 * Devices never touch KVM directly: what they need from the machine comes through the
 * DeviceContext (raise an interrupt line or an MSI, reach guest RAM, ask the machine to
 * stop, write output). The context is built in one place, runtime/device_set.ts, from
 * what the vCPU thread hosting the models has; a capability a new kind of device needs
 * (an ioeventfd or irqfd registration, an I/O thread) is one more member here and there,
 * not a new way to build devices.
 *
 * Models run on vCPU 0's thread only (every AP forwards its accesses there), so a model is
 * a plain single-threaded object; while the machine is paused that thread is parked and
 * no model method runs (except to answer an AP's access that was in flight).
 */
import type { DevicePlan, PciFunctionPlan, Plan, Range } from "../../plan/types.ts";

export type Space = "pio" | "mmio";
export type AccessSize = 1 | 2 | 4;

/** Why a device asks the machine to stop. */
export type StopRequest =
  /** isa-debug-exit: the process exits with (value << 1) | 1. */
  | {
    kind: "debug_exit";
    value: number;
    /** The value is the device's declared `success` value: the process exits with 0. */
    success?: boolean;
  }
  /** i8042 reset line (0xFE to port 0x64), or a reset through another device. */
  | { kind: "reset"; source: string }
  /** The guest turned the machine off (ACPI S5 through the sleep control register). */
  | { kind: "poweroff"; source: string };

export interface DeviceContext {
  /** Set the level of a GSI on the in-kernel irqchip (KVM_IRQ_LINE): IOAPIC/PIC lines. */
  setIrq(gsi: number, level: boolean): void;
  /**
   * Deliver a message-signalled interrupt (KVM_SIGNAL_MSI): the address/data pair the
   * guest programmed into a function's MSI capability or MSI-X table. Returns false when
   * the guest's interrupt controller blocked it.
   */
  signalMsi(address: number, data: number): boolean;
  /**
   * Guest RAM, for devices that read or write it (DMA, virtqueues): built from the Plan's
   * RAM memslots only, so ROM, the PCI hole and unmapped space are outside it, and every
   * access is bounds-checked: a guest-supplied address outside RAM is refused (RangeError,
   * or null from `view`), never a host access.
   */
  memory: GuestRam;
  /**
   * The `shadow` PCI-hole strategy: the 4 KiB page inside the read-only ECAM memslot that
   * IS function `bdf`'s config space (the guest reads it without an exit), or undefined
   * for a function without one. Absent under `trap`. Memory hands the pages out; the
   * device presenting the function fills it and keeps it current.
   */
  shadowConfigPage?(bdf: string): Uint8Array | undefined;
  /** End the run loop after the current exit is handled. */
  requestStop(request: StopRequest): void;
  /**
   * A warning about what the guest did (a hostile virtqueue, say), for the user: stderr in
   * the CLI. Models warn once per kind of trouble and count the rest in `stats()`.
   */
  warn(message: string): void;
  /**
   * The disk image opened for device `id` (a DevicePlan's id, a PCI function's BDF) before
   * the VM was built (runtime/io/disk_images.ts), or undefined.
   */
  disk?(id: string): DiskImage | undefined;
  /**
   * For the PCI host bridge: the model of function `bdf` when one implements more than its
   * config-space header (virtio-pci: capabilities, BARs), else undefined.
   */
  pciEndpoint?(bdf: string): PciEndpoint | undefined;
  /** Where guest-visible text output goes (serial TX): stdout, a file, or a test buffer. */
  output(deviceId: string, bytes: Uint8Array): void;
  /** Monotonic time in milliseconds (for timeouts inside models). */
  now(): number;
  /**
   * Host-side input for a device's receive side (serial RX), or null/absent for none.
   * The CLI gives stdin (`runtime/io/stdin.ts`) to the first serial port;
   * library users and tests leave it out and call the device's `inject()` instead.
   */
  input?(deviceId: string): InputSource | null;
  /**
   * The size of the terminal console `deviceId`'s output is shown on, read now, or null
   * when its output is not a terminal (a file, a pipe, the library's sink).
   */
  terminalSize?(deviceId: string): { cols: number; rows: number } | null;
  /**
   * How a device's I/O thread (virtio-net's TAP waiter) takes the models' thread out of
   * KVM_RUN so the models' `poll()` runs there: absent where the models' thread cannot
   * be kicked (unit tests).
   */
  waker?: VcpuWaker;
}

/**
 * Plain numbers (they cross to a Worker): set the byte at `flagAddress` to 1 (the models'
 * vCPU's kvm_run.immediate_exit, so a thread about to enter KVM_RUN does not) and send
 * `signal` to `thread` (one already inside returns EINTR). The vCPU then calls every
 * model's `poll()` before it enters the guest again.
 */
export interface VcpuWaker {
  thread: bigint;
  flagAddress: bigint;
  signal: number;
}

/** Guest-physical RAM as a device sees it (runtime/memory/mod.ts GuestMemory implements it). */
export interface GuestRam {
  /** True when [gpa, gpa+len) lies entirely in RAM. */
  isRam(gpa: number, len: number): boolean;
  /** A live view of [gpa, gpa+len) when it lies inside one RAM memslot, else null. */
  view(gpa: number, len: number): Uint8Array | null;
  /**
   * Live views of [gpa, gpa+len), one per RAM memslot it crosses (adjacent slots), or null
   * when any of it is outside RAM. Empty for len 0.
   */
  views(gpa: number, len: number): Uint8Array[] | null;
  /** A copy of [gpa, gpa+len); RangeError outside RAM. */
  read(gpa: number, len: number): Uint8Array;
  /** Copies `data` to [gpa, gpa+data.length); RangeError outside RAM. */
  write(gpa: number, data: Uint8Array): void;
}

/** A disk image, opened as its Plan entry asks (plain data: it crosses to a vCPU worker). */
export interface DiskImage {
  /** The device it belongs to: a DevicePlan's id, or a PCI function's BDF. */
  id: string;
  /** As resolved on the host (for messages). */
  path: string;
  /** Open file descriptor (process-wide), read-write unless `readonly`. */
  fd: number;
  /** Bytes; the disk's capacity is the whole 512-byte sectors of it. */
  size: number;
  readonly: boolean;
}

/**
 * A PCI function whose model does more than its config-space header: the PCI host bridge
 * builds the function's config space with these capabilities and tells the model about the
 * guest's config writes; the model decodes its own BARs (as a Device claiming their MMIO).
 */
export interface PciEndpoint {
  /** Capabilities chained from 0x40, in this order. */
  readonly capabilities: readonly PciCapability[];
  /**
   * The function's live config space, once the host bridge has built it (and where each
   * capability landed).
   */
  attach(config: PciConfigAccess): void;
  /** The guest wrote `size` bytes at `offset` of config space (already applied). */
  configWritten(offset: number, size: AccessSize): void;
}

export interface PciCapability {
  /** Capability ID (0x09 vendor-specific, 0x11 MSI-X, ...). */
  id: number;
  /** Body after the 2-byte (id, next) header. */
  body: Uint8Array;
  /** Which bits of the body the guest may write (same length as body); none if absent. */
  wmask?: Uint8Array;
}

export interface PciConfigAccess {
  /** Little-endian read of config space. */
  read(offset: number, size: AccessSize): number;
  /** A write by the device itself (status bits, data windows): no write masks apply. */
  set(offset: number, size: AccessSize, value: number): void;
  /** Offset of each capability in config space, in the order they were given. */
  readonly capabilityOffsets: readonly number[];
}

/** A device model that is also a PCI function's endpoint (built from a PciFunctionPlan). */
export interface PciFunctionDevice extends Device {
  readonly endpoint: PciEndpoint;
}

/** Creates a PCI function's model from its Plan entry. */
export type PciFunctionFactory = (
  fn: PciFunctionPlan,
  ctx: DeviceContext,
  plan: Plan,
) => PciFunctionDevice;

/** A source of guest-bound bytes; delivery happens on the device's own thread. */
export interface InputSource {
  /** Start delivering bytes to `onData`; the returned function stops and releases the source. */
  subscribe(onData: (bytes: Uint8Array) => void): () => void;
  /**
   * Optional: the same source read by polling, for a vCPU loop on the caller's thread
   * (which turns its event loop only now and then): `read()` returns what is available
   * now without blocking, or null. Instead of `subscribe`, not with it.
   */
  openPolled?(): PolledInput;
}

export interface PolledInput {
  read(): Uint8Array | null;
  /** Stops and releases the source (restores a terminal). Idempotent. */
  close(): void;
}

export interface Device {
  /**
   * Work that arrived from the host side (frames on a TAP device): called on the models'
   * thread at every kick of it, an I/O thread's (`ctx.waker`) or the machine's periodic
   * one, never inside another model's call.
   */
  poll?(): void;
  readonly id: string;
  readonly kind: string;
  readonly ports: readonly Range[];
  readonly mmio: readonly Range[];
  /** Returns the value read (only the low `size` bytes are used). */
  read(space: Space, addr: number, size: AccessSize): number;
  write(space: Space, addr: number, size: AccessSize, value: number): void;
  /** Back to power-on state. */
  reset(): void;
  /** Counters for `boot --stats` (accesses, bytes, whatever the model finds useful). */
  stats(): Record<string, number>;
  /**
   * Hand over output the model buffers (the UART keeps TX until a newline). Called at the
   * periodic kick, so a prompt without a newline shows up while the guest waits in HLT.
   */
  flush?(): void;
  /** Release anything the model holds (stdin readers, files). Called exactly once. */
  close?(): void;
  /**
   * A block device takes another backing image (the control API's disk swap), on vCPU 0's
   * thread while the machine is paused, so no request is in flight: it syncs what was
   * written to the old image, serves from the new one, takes its capacity and tells the
   * driver its configuration changed. The machine closes the old image afterwards.
   */
  swapImage?(image: DiskImage): void;
}

/** Creates a device from its Plan entry; `plan` is the whole Plan for context. */
export type DeviceFactory = (entry: DevicePlan, ctx: DeviceContext, plan: Plan) => Device;
