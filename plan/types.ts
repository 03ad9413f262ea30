/**
 * Plan version 1: the only seam between `lang/` and `runtime/`.
 *
 * A Plan says everything the runtime needs, with every address and size explicit:
 * nothing is left for the runtime to default or guess. `lang/` produces it, the
 * runtime consumes it, and a Plan written by hand (or by another tool) boots the same way.
 *
 * Numbers: every address and size is a JSON integer. Guest-physical addresses on x86-64
 * are at most 52 bits wide, so they fit exactly in a JS number (2^53); the compiler
 * evaluates with 64-bit bigints and rejects anything beyond the 52-bit space before
 * lowering. The JSON Schema is `plan/schema.json`: the schema holds the bounds, this file the
 * names and the prose, and plan/schema_types_test.ts proves both describe the same shape.
 */

export const PLAN_VERSION = 1 as const;

/** Highest guest-physical address + 1 a Plan may use (x86-64 MAXPHYADDR is at most 52). */
export const MAX_GUEST_PHYS = 2 ** 52;

export interface Plan {
  /**
   * Optional, for editors: where the JSON Schema is (`plan/schema.json`). Accepted in a
   * Plan written by hand; `vmdesc plan --format json` does not emit it (editors that know
   * the schema match `*.plan.json` by name: see editors/vscode) and the runtime ignores it.
   */
  $schema?: string;
  version: typeof PLAN_VERSION;
  /** Name of the machine this Plan was lowered from. */
  machine: string;
  /** Path of the `.vmdesc` file, for messages only; the runtime never reads it. */
  source: string | null;
  cpus: CpuPlan;
  /** Fixed x86 platform pieces (in-kernel irqchip, PIT, KVM's TSS and identity map). */
  platform: PlatformPlan;
  /** Exactly the KVM memslots to create, in order. */
  memslots: Memslot[];
  /** The 32-bit PCI hole below 4 GiB, or null when the machine has none. */
  hole: HolePlan | null;
  /** Platform (non-PCI) devices, including the PCI host bridge, with the ranges they own. */
  devices: DevicePlan[];
  /** PCI functions behind the host bridge. */
  pci: PciFunctionPlan[];
  boot: BootPlan;
  /** The guest's memory map, sorted by address, non-overlapping. */
  e820: E820Entry[];
  /** ACPI tables to build, or null for none (flat guests usually have none). */
  acpi: AcpiPlan | null;
}

export interface Range {
  /** Guest-physical address, or I/O port number for port ranges. */
  base: number;
  /** Length in bytes (ports: number of ports). Always > 0. */
  size: number;
}

export interface CpuPlan {
  count: number;
  cpuid: {
    /** Start from KVM_GET_SUPPORTED_CPUID (the only source in version 1). */
    source: "kvm-supported";
    /** Feature flags to clear, by their Linux /proc/cpuinfo name (e.g. "cx16", "x2apic"). */
    hide: string[];
  };
}

export interface PlatformPlan {
  /** KVM_CREATE_IRQCHIP: in-kernel PIC + IOAPIC + LAPICs. */
  irqchip: "kernel";
  /** KVM_CREATE_PIT2. */
  pit: boolean;
  /** KVM_SET_TSS_ADDR: three pages KVM needs below 4 GiB on Intel (outside RAM and the hole). */
  tss_addr: number;
  /** KVM_SET_IDENTITY_MAP_ADDR: one page, normally tss_addr - 4096. */
  identity_map_addr: number;
  ioapic: { id: number; base: number; gsi_base: number; pins: number };
  lapic_base: number;
}

export type MemslotFlag = "readonly" | "log_dirty_pages";

export type MemslotBacking =
  /** Zeroed anonymous host memory (guest RAM). */
  | { kind: "anonymous" }
  /** Contents of a host file, mapped privately (writes, if any, stay private). */
  | { kind: "file"; path: string; offset: number }
  /**
   * The `shadow` hole strategy: the slot is backed by one memfd chunk of 0xff bytes of
   * `chunk_size` bytes mapped again and again with MAP_FIXED, so absent PCI functions
   * read as all-ones without exits. `present` lists, relative to the slot base, the
   * 4 KiB config-space pages that get their own private page kept current by the VMM.
   */
  | { kind: "ones_alias"; chunk_size: number; present: PresentConfigPage[] };

export interface PresentConfigPage {
  /** Offset of the function's 4 KiB ECAM page from the memslot's guest_phys. */
  offset: number;
  /** The PCI function it shows (matches PciFunctionPlan.bdf). */
  bdf: string;
}

export interface Memslot {
  slot: number;
  /** Human name: "ram-low", "ram-high", "ecam-shadow", ... */
  name: string;
  guest_phys: number;
  size: number;
  flags: MemslotFlag[];
  backing: MemslotBacking;
}

export type HoleStrategy = "trap" | "shadow";

export interface HolePlan {
  base: number;
  size: number;
  strategy: HoleStrategy;
  ecam: EcamPlan | null;
  /** Window inside the hole where 32-bit memory BARs are placed. */
  mmio32: Range;
  /** Window above RAM for 64-bit BARs, or null. */
  mmio64: Range | null;
  /** I/O port window for I/O BARs. */
  io: Range;
  /** Estimated host memory the hole costs, per strategy (bytes), for `plan` and docs. */
  host_cost: { trap: number; shadow: number };
}

export interface EcamPlan {
  base: number;
  /** (bus_end - bus_start + 1) MiB. */
  size: number;
  segment: number;
  bus_start: number;
  bus_end: number;
  /** The memslot id backing it under `shadow`, or null under `trap`. */
  shadow_slot: number | null;
}

/** Property values a device entry can carry through to the runtime. */
export type PropValue = string | number | boolean;

export interface DevicePlan {
  /** Unique id ("com1", "debug_exit", "pci_host", ...). */
  id: string;
  /** Registry key of the runtime device model ("serial", "debug_exit", "i8042", "pci_host", ...). */
  kind: string;
  ports: Range[];
  mmio: Range[];
  /** GSI it raises, or null. */
  irq: number | null;
  /** Device-specific settings, already defaulted by the compiler. */
  props: Record<string, PropValue>;
  /**
   * A virtio device on the virtio-mmio transport (kind "virtio_blk", "virtio_rng", "virtio_net"): its
   * registers are `mmio[0]`, its interrupt the IOAPIC line `irq`. Absent on other devices.
   */
  virtio?: VirtioPlan;
}

/**
 * A virtio 1.x device (OASIS virtio 1.2), whichever transport carries it: modern PCI (on a
 * PciFunctionPlan) or virtio-mmio version 2 (on a DevicePlan). No legacy interface.
 */
export interface VirtioPlan {
  /** The virtio device ID (spec section 5): 1 network, 2 block, 3 console, 4 entropy source. */
  device_type: number;
  /** The largest size the driver may give each virtqueue, in queue order (powers of two). */
  queue_sizes: number[];
  transport: VirtioTransportPlan;
  /** Where the device's data comes from. */
  backing: VirtioBacking;
}

export type VirtioTransportPlan = VirtioPciTransport | VirtioMmioTransport;

/**
 * The modern virtio PCI transport: every structure the vendor capabilities point at lives
 * in one memory BAR of the function, at the offsets given here (relative to the BAR).
 */
export interface VirtioPciTransport {
  kind: "pci";
  /** Index of the function's BAR (its `bars` entry with this `index`) holding the regions. */
  bar: number;
  /** struct virtio_pci_common_cfg. */
  common_cfg: BarRegion;
  /** The ISR status byte (read to clear; INTx only). */
  isr_cfg: BarRegion;
  /** The device-specific configuration (virtio_blk_config, ...). */
  device_cfg: BarRegion;
  /** Queue notifications: queue q is notified at notify_cfg.offset + q × multiplier. */
  notify_cfg: BarRegion;
  notify_off_multiplier: number;
  msix: {
    /** Table entries: one for configuration changes plus one per queue. */
    vectors: number;
    table: BarRegion;
    /** Pending bit array. */
    pba: BarRegion;
  };
}

export interface VirtioMmioTransport {
  kind: "mmio";
  /** The register layout: version 2 (virtio 1.x; the legacy version 1 is not offered). */
  version: 2;
}

/** A part of a BAR: offset from the BAR's start and length, in bytes. */
export interface BarRegion {
  offset: number;
  size: number;
}

export type VirtioBacking =
  /**
   * virtio-blk: a raw image file (absolute, or relative to the Plan's own directory),
   * opened read-write unless `readonly`; its size (whole 512-byte sectors) is the capacity.
   * `serial` (at most 20 bytes) is what GET_ID answers.
   */
  | { kind: "file"; path: string; readonly: boolean; serial: string }
  /** virtio-rng: bytes from the host's getrandom(2). */
  | { kind: "getrandom" }
  /**
   * virtio-console: one port whose output and input are the entry's `props.output` and
   * `props.input`, as a serial port's are.
   */
  | { kind: "console" }
  /**
   * virtio-net: frames to and from the host TAP device `tap` (created when absent and
   * removed when the machine closes; kept when it existed before). `mac` is the guest's
   * address, six lower-case hex pairs joined by colons, unicast.
   */
  | { kind: "tap"; tap: string; mac: string };

export type BarKind = "mem32" | "mem64" | "io";

export interface BarPlan {
  /** BAR register index 0..5 (a mem64 BAR uses index and index + 1). */
  index: number;
  kind: BarKind;
  /** Power of two; >= 16 for memory, >= 4 for I/O. */
  size: number;
  /** Address assigned by the compiler (firmware-like placement), aligned to size. */
  address: number;
  prefetchable: boolean;
}

/** The IDs a PCI function shows in its config-space header. */
export interface PciIds {
  vendor_id: number;
  device_id: number;
  /** 24-bit class code: base class << 16 | subclass << 8 | prog-if. */
  class_code: number;
  revision: number;
  subsystem_vendor_id: number;
  subsystem_id: number;
}

export interface PciFunctionPlan extends PciIds {
  /** Canonical "BB:DD.F" in lower-case hex. */
  bdf: string;
  segment: number;
  bus: number;
  device: number;
  function: number;
  /** Registry key of the runtime model ("virtio_rng", "generic", ...). */
  kind: string;
  /** 0 for normal functions; bit 7 set on function 0 of a multi-function device. */
  header_type: number;
  bars: BarPlan[];
  /** 0 none, 1..4 INTA..INTD. */
  interrupt_pin: number;
  /** GSI wired to the pin, or null. */
  irq: number | null;
  props: Record<string, PropValue>;
  /** A virtio function (kind "virtio_blk", "virtio_rng", "virtio_net"): the modern PCI transport. */
  virtio?: VirtioPlan;
}

export type BootProtocol = "pvh" | "linux" | "flat";

export interface BootPlan {
  protocol: BootProtocol;
  /** Path of the payload; absolute, or relative to the Plan's own directory. */
  path: string;
  cmdline: string;
  initrd: string | null;
  /** flat: where the binary is loaded. null for pvh/linux (taken from the payload). */
  load_address: number | null;
  /** flat: first instruction's address (defaults to load_address in the compiler). */
  entry: number | null;
  /** flat: "real" (16-bit) or "protected" (32-bit flat segments, paging off). */
  cpu_mode: "protected" | "real" | null;
  /**
   * Where the runtime places its boot data in guest RAM (all below 1 MiB, inside RAM,
   * outside the payload): PVH start info / Linux zero page, command line, page tables.
   */
  layout: BootLayout;
}

export interface BootLayout {
  /** hvm_start_info (pvh) or boot_params zero page (linux). */
  info_addr: number;
  cmdline_addr: number;
  /** Max bytes of command line including NUL. */
  cmdline_max: number;
  /** memmap table for PVH (hvm_memmap_table_entry[]). */
  memmap_addr: number;
  /** GDT used by protected/long mode entries. */
  gdt_addr: number;
  /** Identity-mapped page tables for 64-bit entry (PML4 then PDPT then PDs). */
  page_tables_addr: number;
  /** Initial stack pointer for flat/pvh guests. */
  stack_top: number;
}

export type E820Type = "ram" | "reserved" | "acpi" | "nvs";

export interface E820Entry {
  addr: number;
  size: number;
  type: E820Type;
}

export interface AcpiPlan {
  /** 6 ASCII characters. */
  oem_id: string;
  /** 8 ASCII characters. */
  oem_table_id: string;
  /** Where the RSDP goes (in the 0xE0000-0xFFFFF BIOS area so non-PVH guests find it). */
  rsdp_addr: number;
  /** Where the other tables are laid out, contiguously, 16-byte aligned. */
  tables_addr: number;
  /** Bytes reserved for the tables (marked "acpi" in e820). */
  tables_size: number;
  /** SCI interrupt for the FADT. */
  sci_irq: number;
}
