/**
 * Helpers for device unit tests: a recording DeviceContext (with 1 MiB of guest RAM) and a
 * minimal Plan.
 * Only tests import this module.
 */
import type { DeviceContext, StopRequest } from "./device.ts";
import type { DevicePlan, PciFunctionPlan, Plan } from "../../plan/types.ts";
import { GuestMemory } from "../memory/mod.ts";

/** Where the recording context's guest RAM sits, and how large it is. */
export const TEST_RAM = { base: 0, size: 1 << 20 };

export interface RecordingContext extends DeviceContext {
  irqs: Array<[number, boolean]>;
  msis: Array<[number, number]>;
  stops: StopRequest[];
  warnings: string[];
  out: Map<string, Uint8Array[]>;
  text(deviceId: string): string;
}

export function recordingContext(): RecordingContext {
  const out = new Map<string, Uint8Array[]>();
  const ram = {
    name: "ram",
    guestPhys: TEST_RAM.base,
    size: TEST_RAM.size,
    hostAddr: "0",
    readonly: false,
    ram: true,
  };
  return {
    irqs: [],
    msis: [],
    stops: [],
    warnings: [],
    out,
    setIrq(gsi, level) {
      this.irqs.push([gsi, level]);
    },
    signalMsi(address, data) {
      this.msis.push([address, data]);
      return true;
    },
    // Plain memory standing in for a RAM memslot: the same bounds checks as a machine's.
    memory: new GuestMemory([ram], [new Uint8Array(TEST_RAM.size)]),
    requestStop(request) {
      this.stops.push(request);
    },
    warn(message) {
      this.warnings.push(message);
    },
    output(id, bytes) {
      if (!out.has(id)) out.set(id, []);
      out.get(id)!.push(bytes.slice());
    },
    now: () => performance.now(),
    text(id) {
      const chunks = out.get(id) ?? [];
      return chunks.map((c) => new TextDecoder().decode(c)).join("");
    },
  };
}

export function devicePlan(
  partial: Partial<DevicePlan> & Pick<DevicePlan, "id" | "kind">,
): DevicePlan {
  return { ports: [], mmio: [], irq: null, props: {}, ...partial };
}

export function pciFunction(
  partial: Partial<PciFunctionPlan> & Pick<PciFunctionPlan, "bus" | "device" | "function">,
): PciFunctionPlan {
  const h = (n: number) => n.toString(16).padStart(2, "0");
  return {
    bdf: `${h(partial.bus)}:${h(partial.device)}.${partial.function}`,
    segment: 0,
    kind: "generic",
    vendor_id: 0x1234,
    device_id: 0x5678,
    class_code: 0x00ff00,
    revision: 1,
    subsystem_vendor_id: 0,
    subsystem_id: 0,
    header_type: 0,
    bars: [],
    interrupt_pin: 0,
    irq: null,
    props: {},
    ...partial,
  };
}

/** A Plan with just enough in it for device models (no memslots, no boot payload). */
export function minimalPlan(opts: {
  pci?: PciFunctionPlan[];
  ecam?: { base: number; bus_start: number; bus_end: number } | null;
} = {}): Plan {
  const e = opts.ecam === undefined ? { base: 0xe0000000, bus_start: 0, bus_end: 255 } : opts.ecam;
  return {
    version: 1,
    machine: "test",
    source: null,
    cpus: { count: 1, cpuid: { source: "kvm-supported", hide: [] } },
    platform: {
      irqchip: "kernel",
      pit: true,
      tss_addr: 0xfffbd000,
      identity_map_addr: 0xfffbc000,
      ioapic: { id: 0, base: 0xfec00000, gsi_base: 0, pins: 24 },
      lapic_base: 0xfee00000,
    },
    memslots: [],
    hole: {
      base: 0xc0000000,
      size: 0x40000000,
      strategy: "trap",
      ecam: e
        ? {
          base: e.base,
          size: (e.bus_end - e.bus_start + 1) * 0x100000,
          segment: 0,
          bus_start: e.bus_start,
          bus_end: e.bus_end,
          shadow_slot: null,
        }
        : null,
      mmio32: { base: 0xc0000000, size: 0x10000000 },
      mmio64: null,
      io: { base: 0xc000, size: 0x4000 },
      host_cost: { trap: 0, shadow: 0 },
    },
    devices: [],
    pci: opts.pci ?? [],
    boot: {
      protocol: "pvh",
      path: "x.elf",
      cmdline: "",
      initrd: null,
      load_address: null,
      entry: null,
      cpu_mode: null,
      layout: {
        info_addr: 0x7000,
        cmdline_addr: 0x8000,
        cmdline_max: 4096,
        memmap_addr: 0x9000,
        gdt_addr: 0x500,
        page_tables_addr: 0x10000,
        stack_top: 0x80000,
      },
    },
    e820: [],
    acpi: null,
  };
}
