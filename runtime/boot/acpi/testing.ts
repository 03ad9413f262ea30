/**
 * A hand-written Plan for unit tests of the boot code: 4 GiB of RAM split around a 1 GiB
 * PCI hole with a full ECAM window, COM1, an i8042 and one PCI function. Written by hand
 * (not compiled from a .vmdesc) so that these tests depend on the Plan shape alone.
 */
import type { Plan } from "../../../plan/types.ts";

const GiB = 2 ** 30;
const MiB = 2 ** 20;

export interface SampleOptions {
  cpus?: number;
  busStart?: number;
  busEnd?: number;
  mmio64?: boolean;
  /** The ACPI sleep registers at 0x600 (default true). */
  sleep?: boolean;
}

/** The platform block every test Plan uses: in-kernel irqchip and PIT, the usual addresses. */
export function x86Platform(): Plan["platform"] {
  return {
    irqchip: "kernel",
    pit: true,
    tss_addr: 0xfffb_d000,
    identity_map_addr: 0xfffb_c000,
    ioapic: { id: 0, base: 0xfec0_0000, gsi_base: 0, pins: 24 },
    lapic_base: 0xfee0_0000,
  };
}

export function samplePlan(o: SampleOptions = {}): Plan {
  const busStart = o.busStart ?? 0;
  const busEnd = o.busEnd ?? 255;
  const ecamBase = 0xe000_0000 + busStart * MiB;
  const ecamSize = (busEnd - busStart + 1) * MiB;
  return {
    version: 1,
    machine: "sample",
    source: null,
    cpus: { count: o.cpus ?? 2, cpuid: { source: "kvm-supported", hide: [] } },
    platform: x86Platform(),
    memslots: [
      {
        slot: 0,
        name: "ram-low",
        guest_phys: 0,
        size: 3 * GiB,
        flags: [],
        backing: { kind: "anonymous" },
      },
      {
        slot: 1,
        name: "ram-high",
        guest_phys: 4 * GiB,
        size: 1 * GiB,
        flags: [],
        backing: { kind: "anonymous" },
      },
    ],
    hole: {
      base: 3 * GiB,
      size: 1 * GiB,
      strategy: "trap",
      ecam: {
        base: ecamBase,
        size: ecamSize,
        segment: 0,
        bus_start: busStart,
        bus_end: busEnd,
        shadow_slot: null,
      },
      mmio32: { base: 0xc000_0000, size: 0x2000_0000 },
      mmio64: o.mmio64 === false ? null : { base: 0x1_8000_0000, size: 0x1_0000_0000 },
      io: { base: 0xc000, size: 0x4000 },
      host_cost: { trap: 0, shadow: 0 },
    },
    devices: [
      {
        id: "com1",
        kind: "serial",
        ports: [{ base: 0x3f8, size: 8 }],
        mmio: [],
        irq: 4,
        props: {},
      },
      {
        id: "i8042",
        kind: "i8042",
        ports: [{ base: 0x60, size: 1 }, { base: 0x64, size: 1 }],
        mmio: [],
        irq: 1,
        props: {},
      },
      {
        id: "pci_host",
        kind: "pci_host",
        ports: [{ base: 0xcf8, size: 8 }],
        mmio: [],
        irq: null,
        props: {},
      },
      ...(o.sleep === false ? [] : [{
        id: "acpi_sleep",
        kind: "acpi_sleep",
        ports: [{ base: 0x600, size: 2 }],
        mmio: [],
        irq: null,
        props: { s5_type: 5 },
      }]),
    ],
    pci: [{
      bdf: "00:02.0",
      segment: 0,
      bus: busStart,
      device: 2,
      function: 0,
      kind: "virtio_rng",
      vendor_id: 0x1af4,
      device_id: 0x1044,
      class_code: 0x00ff00,
      revision: 1,
      subsystem_vendor_id: 0x1af4,
      subsystem_id: 0x1100,
      header_type: 0,
      bars: [],
      interrupt_pin: 1,
      irq: 11,
      props: {},
    }],
    boot: {
      protocol: "linux",
      path: "/nonexistent/vmlinuz",
      cmdline: "console=ttyS0",
      initrd: null,
      load_address: null,
      entry: null,
      cpu_mode: null,
      layout: {
        info_addr: 0x7000,
        cmdline_addr: 0x20000,
        cmdline_max: 0x10000,
        memmap_addr: 0x9000,
        gdt_addr: 0x500,
        page_tables_addr: 0x10000,
        stack_top: 0x8ff0,
      },
    },
    e820: [
      { addr: 0, size: 0x9fc00, type: "ram" },
      { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: "reserved" },
      { addr: 0x100000, size: 3 * GiB - 0x100000 - 0x10000, type: "ram" },
      { addr: 3 * GiB - 0x10000, size: 0x10000, type: "acpi" },
      { addr: ecamBase, size: ecamSize, type: "reserved" },
      { addr: 4 * GiB, size: 1 * GiB, type: "ram" },
    ],
    acpi: {
      oem_id: "VMDESC",
      oem_table_id: "VMDESCPL",
      rsdp_addr: 0xe0000,
      tables_addr: 3 * GiB - 0x10000,
      tables_size: 0x10000,
      sci_irq: 9,
    },
  };
}
