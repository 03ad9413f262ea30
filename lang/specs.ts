/**
 * What the language knows about settings, device kinds and PCI kinds: the property
 * tables the checker validates against (and the LSP completes from), and the fixed
 * numbers of the platform vmdesc lowers to.
 */
import type { PciIds } from "../plan/types.ts";

export type PropType =
  | { t: "int"; min?: bigint; max?: bigint }
  | { t: "string" }
  | { t: "range" }
  | { t: "onoff" }
  | { t: "enum"; values: readonly string[] };

export interface PropSpec {
  type: PropType;
  doc: string;
  required?: boolean;
  /** May appear several times in one block (e.g. `ram`). */
  repeat?: boolean;
}

export type PropTable = Record<string, PropSpec>;

const int = (min?: bigint, max?: bigint): PropType => ({ t: "int", min, max });

/** Machine-level `name value` settings (structured ones listed in STRUCTURED_SETTINGS). */
export const MACHINE_PROPS: PropTable = {
  cpus: { type: int(), doc: "number of vCPUs (1..255)" },
  memory: { type: int(), doc: "total RAM; split around the PCI hole below and above 4 GiB" },
  ram: {
    type: { t: "range" },
    doc: "an explicit RAM range (`a .. b` or `a + size`)",
    repeat: true,
  },
  acpi: { type: { t: "onoff" }, doc: "build ACPI tables for pvh/linux boots (on by default)" },
};

/** Settings with their own syntax (for completion and "did you mean"). */
export const STRUCTURED_SETTINGS = ["pci_hole", "device", "pci", "boot", "cpuid"] as const;

/**
 * The structured settings a machine may give more than once (each adds one more);
 * `pci_hole` and `boot` a second time replace the first (W0007). Properties say it with
 * `repeat`; in device, PCI, hole and boot bodies nothing repeats (E0305) but `bar` (one per
 * index). lsp/completion.ts offers a setting again only when it may repeat, and
 * lsp/completion_checker_test.ts holds these tables to what the checker does.
 */
export const REPEATABLE_STRUCTURED: readonly string[] = ["device", "pci", "cpuid"];

export const HOLE_PROPS: PropTable = {
  strategy: {
    type: { t: "enum", values: ["trap", "shadow"] },
    doc:
      "how absent PCI functions are answered: trap (every access exits) or shadow (read-only all-ones memslot)",
  },
};
export const HOLE_STRUCTURED = ["ecam"] as const;

export const UART_PORT_IRQ: Record<number, number> = { 0x3f8: 4, 0x2f8: 3, 0x3e8: 4, 0x2e8: 3 };

/** A virtio disk's GET_ID answers at most this many bytes (VIRTIO_BLK_ID_BYTES). */
export const VIRTIO_BLK_ID_BYTES = 20;

/** The values of a console's `input`. */
export const CONSOLE_INPUTS = ["stdin", "none"] as const;
/** Linux network interface names: at most IFNAMSIZ - 1 bytes. */
export const TAP_NAME_MAX = 15;

export interface DeviceKindSpec {
  doc: string;
  props: PropTable;
}

export const DEVICE_KINDS: Record<string, DeviceKindSpec> = {
  serial: {
    doc:
      "16550A UART (8 ports from `port`); irq defaults to 4 for 0x3f8/0x3e8 and 3 for 0x2f8/0x2e8",
    props: {
      port: { type: int(0n, 0xffffn), doc: "first I/O port (the UART uses 8)", required: true },
      irq: { type: int(0n, 23n), doc: "GSI of the UART interrupt" },
      ...consoleIoProps(),
    },
  },
  debug_exit: {
    doc:
      "isa-debug-exit: a write of V stops the machine with exit status (V << 1) | 1 (0 for the `success` value)",
    props: {
      port: { type: int(0n, 0xffffn), doc: "I/O port", required: true },
      size: { type: int(1n, 4n), doc: "I/O size in bytes: 1, 2 or 4 (default 1)" },
      success: {
        type: int(0n, 0xffff_ffffn),
        doc: "a value that means success: writing it ends the machine with exit status 0",
      },
    },
  },
  i8042: {
    doc: "PS/2 controller stub: answers the status port and the reset line (0xFE to port + 4)",
    props: {
      port: {
        type: int(0n, 0xfffbn),
        doc: "data port (default 0x60); the command port is port + 4",
      },
    },
  },
  virtio_blk: {
    doc:
      "virtio block device on the virtio-mmio transport (version 2), for machines without PCI: a raw disk image",
    props: { ...virtioBlkProps(), ...virtioMmioProps() },
  },
  virtio_rng: {
    doc:
      "virtio entropy device on the virtio-mmio transport (version 2): bytes from the host's getrandom",
    props: virtioMmioProps(),
  },
  virtio_console: {
    doc:
      "virtio console (one port) on the virtio-mmio transport (version 2): output routed like a serial port's, stdin as input",
    props: { ...consoleIoProps(), ...virtioMmioProps() },
  },
  virtio_net: {
    doc:
      "virtio network device on the virtio-mmio transport (version 2), for machines without PCI: frames to and from a host TAP device",
    props: { ...virtioNetProps(), ...virtioMmioProps() },
  },
};

/**
 * Where a console-like device (a serial port, a virtio console) writes and what it reads:
 * `output` like a UART's, and `input`, which says whether it takes the machine's stdin.
 * Only one device may (E0230); without any `input stdin`, the first serial port takes it,
 * or, in a machine without one, the first virtio console (lang/check/console.ts).
 */
function consoleIoProps(): PropTable {
  return {
    output: {
      type: { t: "string" },
      doc:
        'where transmitted bytes go: "stdout" (default), "stderr", "null" or a file path (relative to this file; truncated at boot; "./stdout" for a file named stdout)',
    },
    input: {
      type: { t: "enum", values: CONSOLE_INPUTS },
      doc:
        "`stdin`: this device receives the machine's stdin (only one device may); `none`: it receives nothing (default: the first serial port, else the first virtio_console)",
    },
  };
}

/** The settings of a virtio network device, on either transport. */
function virtioNetProps(): PropTable {
  return {
    tap: {
      type: { t: "string" },
      doc:
        `the host TAP device the guest's frames go to and come from (at most ${TAP_NAME_MAX} bytes); created when absent and removed at exit, kept when it existed before`,
      required: true,
    },
    mac: {
      type: { t: "string" },
      doc:
        'the guest\'s MAC address, "52:54:00:12:34:56" (unicast; default: 52:54:00 and three bytes derived from the machine and device names, the same on every boot)',
    },
  };
}

/** The settings of a virtio block device, on either transport. */
function virtioBlkProps(): PropTable {
  return {
    file: {
      type: { t: "string" },
      doc:
        "the raw disk image (relative to this file); its size in whole 512-byte sectors is the disk's capacity",
      required: true,
    },
    readonly: {
      type: { t: "onoff" },
      doc: "the guest may only read: the image is opened read-only and writes fail (default off)",
    },
    serial: {
      type: { t: "string" },
      doc:
        `the disk's ID as the guest reads it (GET_ID; Linux: /sys/block/vda/serial), at most ${VIRTIO_BLK_ID_BYTES} bytes`,
    },
  };
}

/** Where a virtio-mmio device sits, when not placed for you. */
function virtioMmioProps(): PropTable {
  return {
    address: {
      type: int(0n),
      doc:
        "guest-physical address of the device's 4 KiB register page (default: the next free page from 0xFEB0_0000)",
    },
    irq: {
      type: int(1n, 23n),
      doc:
        "IOAPIC line (default: the first free of 5, 6, 7, 10, 11, 14, 15, then 16..23 when the machine has ACPI)",
    },
  };
}

/** A PCI function kind: its default IDs (the Plan's PciIds) and the properties it takes. */
export interface PciKindSpec extends PciIds {
  doc: string;
  /**
   * Whether the body may declare BARs (`bar INDEX KIND SIZE`); default yes. A kind whose
   * model brings its own BARs says false, and the checker must refuse `bar` there (E0302).
   */
  bars?: boolean;
  props: PropTable;
}

const PCI_COMMON: PropTable = {
  irq: {
    type: int(1n, 23n),
    doc: "GSI wired to the interrupt pin (default 16 + (device + pin - 1) % 4)",
  },
  pin: { type: int(0n, 4n), doc: "interrupt pin: 1..4 = INTA..INTD, 0 = none (default 1)" },
};

const VIRTIO_PCI_PROPS: PropTable = {
  ...PCI_COMMON,
  mmio64: {
    type: { t: "onoff" },
    doc:
      "place the function's BAR above 4 GiB, in the hole's 64-bit window (default off: the 32-bit window, which 32-bit guests and early boot code reach)",
  },
};

/**
 * `virtio_blk` and `virtio_rng` are virtio 1.x modern functions (no legacy interface): IDs
 * 1af4:1040 + device type, revision 1, subsystem 1af4:1100 (QEMU's choice for modern-only
 * functions). Their model brings its BAR (lowering places it; VIRTIO_PCI_BAR says what is
 * in it), so `bar` is refused there. `virtio_net` (1af4:1041) too.
 */
export const PCI_KINDS: Record<string, PciKindSpec> = {
  virtio_net: {
    doc:
      "virtio network device (modern, IDs 1af4:1041, class 0x020000) with MSI-X: frames to and from a host TAP device",
    vendor_id: 0x1af4,
    device_id: 0x1041,
    class_code: 0x020000,
    revision: 1,
    subsystem_vendor_id: 0x1af4,
    subsystem_id: 0x1100,
    bars: false,
    props: { ...VIRTIO_PCI_PROPS, ...virtioNetProps() },
  },
  virtio_blk: {
    doc: "virtio block device (modern, IDs 1af4:1042, class 0x010000) with MSI-X: a raw disk image",
    vendor_id: 0x1af4,
    device_id: 0x1042,
    class_code: 0x010000,
    revision: 1,
    subsystem_vendor_id: 0x1af4,
    subsystem_id: 0x1100,
    bars: false,
    props: { ...VIRTIO_PCI_PROPS, ...virtioBlkProps() },
  },
  virtio_rng: {
    doc:
      "virtio entropy device (modern, IDs 1af4:1044, class 0x00ff00) with MSI-X: bytes from the host's getrandom",
    vendor_id: 0x1af4,
    device_id: 0x1044,
    class_code: 0x00ff00,
    revision: 1,
    subsystem_vendor_id: 0x1af4,
    subsystem_id: 0x1100,
    bars: false,
    props: VIRTIO_PCI_PROPS,
  },
  virtio_console: {
    doc:
      "virtio console (modern, IDs 1af4:1043, class 0x078000) with MSI-X, one port: output routed like a serial port's, stdin as input",
    vendor_id: 0x1af4,
    device_id: 0x1043,
    class_code: 0x078000,
    revision: 1,
    subsystem_vendor_id: 0x1af4,
    subsystem_id: 0x1100,
    bars: false,
    props: { ...VIRTIO_PCI_PROPS, ...consoleIoProps() },
  },
  generic: {
    doc: "a function with the IDs, class and BARs you give",
    vendor_id: 0,
    device_id: 0,
    class_code: 0xff0000,
    revision: 0,
    subsystem_vendor_id: 0,
    subsystem_id: 0,
    props: {
      ...PCI_COMMON,
      vendor: { type: int(0n, 0xfffen), doc: "vendor ID", required: true },
      device: { type: int(0n, 0xffffn), doc: "device ID", required: true },
      class: { type: int(0n, 0xffffffn), doc: "24-bit class code (default 0xff0000, unassigned)" },
      revision: { type: int(0n, 0xffn), doc: "revision ID (default 0)" },
      subsystem_vendor: { type: int(0n, 0xffffn), doc: "subsystem vendor ID (default 0)" },
      subsystem: { type: int(0n, 0xffffn), doc: "subsystem ID (default 0)" },
    },
  },
};

export const BOOT_PROTOCOLS = ["pvh", "linux", "flat"] as const;

export const BOOT_OPTIONS: PropTable = {
  cmdline: { type: { t: "string" }, doc: "kernel command line" },
  initrd: { type: { t: "string" }, doc: "initial ramdisk (pvh and linux), relative to this file" },
  load: { type: int(), doc: "flat: load address of the binary" },
  entry: { type: int(), doc: "flat: first instruction (default: load)" },
  mode: {
    type: { t: "enum", values: ["protected", "real"] },
    doc: "flat: CPU mode at entry (default protected)",
  },
};

/** Which boot options each protocol accepts. */
export const BOOT_OPTIONS_BY_PROTOCOL: Record<string, readonly string[]> = {
  pvh: ["cmdline", "initrd"],
  linux: ["cmdline", "initrd"],
  flat: ["load", "entry", "mode"],
};

export const BAR_KINDS = ["mem32", "mem64", "io"] as const;

// ── virtio ───────────────────────────────────────────────────────────────

/** The virtio devices vmdesc implements, by kind (the same kinds on both transports). */
export interface VirtioKindSpec {
  /** The virtio device ID (virtio 1.2, section 5). */
  deviceType: number;
  /** Largest size of each virtqueue (QEMU's and Firecracker's 256). */
  queueSizes: number[];
}

export const VIRTIO_KINDS: Record<string, VirtioKindSpec> = {
  virtio_blk: { deviceType: 2, queueSizes: [256] },
  virtio_rng: { deviceType: 4, queueSizes: [256] },
  // One port: receiveq0, transmitq0 (no MULTIPORT, so no control queues).
  virtio_console: { deviceType: 3, queueSizes: [256, 256] },
  /** One receive queue and one transmit queue (no multiqueue, no control queue). */
  virtio_net: { deviceType: 1, queueSizes: [256, 256] },
};

/**
 * What a virtio PCI function's one memory BAR holds (offsets from the BAR's start): a page
 * for each capability's structure, then the MSI-X table and its pending bits. 32 KiB.
 */
export const VIRTIO_PCI_BAR = {
  index: 0,
  size: 0x8000n,
  common_cfg: { offset: 0x0000, size: 0x1000 },
  isr_cfg: { offset: 0x1000, size: 0x1000 },
  device_cfg: { offset: 0x2000, size: 0x1000 },
  notify_cfg: { offset: 0x3000, size: 0x1000 },
  notify_off_multiplier: 4,
  msix_table: { offset: 0x4000, size: 0x1000 },
  msix_pba: { offset: 0x5000, size: 0x1000 },
} as const;

/**
 * Where virtio-mmio devices go unless given an `address`: one 4 KiB page each, upwards
 * from just below the IOAPIC (QEMU microvm's virtio-mmio area; outside RAM, which stops at
 * 3 GiB without a hole, and kept out of the hole's BAR windows).
 */
export const VIRTIO_MMIO_WINDOW = { base: 0xfeb0_0000n, size: 0x10_0000n };
export const VIRTIO_MMIO_SIZE = 0x1000n;

/**
 * The IOAPIC lines virtio-mmio devices get unless given an `irq`: ISA lines no legacy
 * device of a PC claims (not 1 keyboard, 3/4 serial, 8 RTC, 9 SCI, 12 mouse, 13 FPU)...
 */
export const VIRTIO_MMIO_ISA_IRQS = [5, 6, 7, 10, 11, 14, 15];
/** ...then, with ACPI (which describes them; without it Linux knows only the 16 ISA lines). */
export const VIRTIO_MMIO_ACPI_IRQS = [16, 17, 18, 19, 20, 21, 22, 23];

/** CPU feature names `cpuid { hide ... }` accepts: the runtime's table, in plan/cpuid.ts. */
export { CPUID_FEATURE_NAMES as CPUID_FEATURES } from "../plan/cpuid.ts";

// ── platform constants ───────────────────────────────────────────────────

export const KiB = 1024n;
export const MiB = 1024n * KiB;
export const GiB = 1024n * MiB;
export const FOUR_GIB = 4n * GiB;
export const PAGE = 4096n;

export { KVM_USER_MEM_SLOTS, MAX_CPUS } from "../plan/limits.ts";

/** Without a pci_hole, RAM below 4 GiB still stops here (like Firecracker's 3 GiB gap). */
export const DEFAULT_LOW_RAM_LIMIT = 3n * GiB;

export const IOAPIC_BASE = 0xfec00000n;
export const LAPIC_BASE = 0xfee00000n;
export const IDENTITY_MAP_ADDR = 0xfffbc000n;
export const TSS_ADDR = 0xfffbd000n;

/** Fixed platform MMIO regions below 4 GiB that nothing else may use. */
export const PLATFORM_REGIONS: { name: string; base: bigint; size: bigint }[] = [
  { name: "the IOAPIC", base: IOAPIC_BASE, size: 0x1000n },
  { name: "the local APIC", base: LAPIC_BASE, size: 0x1000n },
  { name: "KVM's identity map and TSS", base: IDENTITY_MAP_ADDR, size: 0x4000n },
];

/** I/O ports the in-kernel irqchip and PIT own (KVM_CREATE_IRQCHIP / KVM_CREATE_PIT2). */
export const PLATFORM_PORTS: { name: string; base: number; size: number }[] = [
  { name: "the in-kernel PIC (master)", base: 0x20, size: 2 },
  { name: "the in-kernel PIT", base: 0x40, size: 4 },
  { name: "the in-kernel PIT speaker port", base: 0x61, size: 1 },
  { name: "the in-kernel PIC (slave)", base: 0xa0, size: 2 },
  { name: "the in-kernel PIC's ELCR", base: 0x4d0, size: 2 },
];

/** GSIs the platform uses: the PIT on 0 and the PIC cascade on 2. */
export const PLATFORM_IRQS: Record<number, string> = { 0: "the PIT timer", 2: "the PIC cascade" };

export const PCI_CONFIG_PORTS = { base: 0xcf8, size: 8 };
export const PCI_IO_WINDOW = { base: 0xc000, size: 0x4000 };
export const ACPI_SCI_IRQ = 9;
/**
 * The sleep control and status registers of a hardware-reduced ACPI machine (the FADT
 * points at them; writing S5 there powers the machine off). Every machine with ACPI gets
 * them, at QEMU's and Cloud Hypervisor's ACPI port.
 */
export const ACPI_SLEEP_PORTS = { base: 0x600, size: 2 };
/** The SLP_TYP of S5 (soft-off): the DSDT's `\_S5` and the sleep registers agree on it. */
export const ACPI_S5_SLEEP_TYPE = 5;

/** Boot data below 1 MiB (BootLayout); see lang/README.md for the map. */
export const BOOT_LAYOUT = {
  gdt_addr: 0x5000,
  info_addr: 0x7000,
  memmap_addr: 0x8000,
  page_tables_addr: 0x9000,
  cmdline_addr: 0x20000,
  cmdline_max: 2048,
  stack_top: 0x80000,
};

/** Start of the EBDA; RAM below it is usable, 0x9FC00..1 MiB is not. */
export const EBDA_START = 0x9fc00;
export const HIGH_MEMORY = 0x100000;
export const ACPI_LAYOUT = { rsdp_addr: 0xe0000, tables_addr: 0xe1000, tables_size: 0x1f000 };

/** Trap-strategy warnings: a window of at least this many buses is "large". */
export const LARGE_ECAM_BUSES = 16;
/** W0004: buses declared beyond the used ones before we warn. */
export const EXCESS_BUSES = 16;
/**
 * Config probes a bus scan makes on an empty bus: function 0 of each of the 32 devices.
 * Functions 1-7 are read only for a present multi-function device, so absent devices
 * cost one probe each, not eight.
 */
export const PROBES_PER_BUS = 32;
