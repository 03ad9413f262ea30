/**
 * ACPI tables from a Plan: RSDP, XSDT, FADT, MADT, MCFG and a DSDT written in AML.
 *
 * Pure: a Plan in, bytes with the guest-physical addresses they belong at out. The boot
 * loaders write the blobs into guest memory; PVH passes `rsdpAddr` in hvm_start_info,
 * the Linux protocol in boot_params.acpi_rsdp_addr, and the RSDP also sits where a
 * legacy guest scans for it (the Plan puts it in the 0xE0000-0xFFFFF BIOS area).
 */
import type { DevicePlan, Plan } from "../../../plan/types.ts";
import * as aml from "./aml.ts";
import {
  dsdt,
  fadt,
  IAPC_BOOT_ARCH,
  INTI,
  madt,
  mcfg,
  type McfgEntry,
  type Oem,
  rsdp,
  xsdt,
} from "./tables.ts";

export interface AcpiBlob {
  /** Guest-physical address of the first byte. */
  addr: number;
  bytes: Uint8Array;
}

export interface AcpiTable extends AcpiBlob {
  /** "RSDP", "XSDT", "FACP", "APIC", "MCFG", "DSDT". */
  signature: string;
}

export interface AcpiBuild {
  rsdpAddr: number;
  /** Everything to write into guest memory (the RSDP and every table). */
  blobs: AcpiBlob[];
  /** The same bytes by signature, for tests, `plan` output and debugging. */
  tables: AcpiTable[];
}

/** Thrown when a Plan's ACPI area cannot hold the tables or is inconsistent (code E1006). */
export class AcpiPlanError extends Error {
  readonly code = "E1006";
  constructor(message: string, readonly hint: string) {
    super(message);
    this.name = "AcpiPlanError";
  }
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/** The ISA IRQ → GSI overrides a PC-like machine needs. */
function overrides(plan: Plan): { source: number; gsi: number; flags: number }[] {
  const acpi = plan.acpi!;
  const out: { source: number; gsi: number; flags: number }[] = [];
  // The PIT's IRQ0 is wired to IOAPIC pin 2 (pin 0 carries the 8259's ExtINT).
  if (plan.platform.pit) out.push({ source: 0, gsi: 2, flags: INTI.CONFORMING });
  // The SCI is level-triggered, active-low, as the ACPI specification requires.
  out.push({
    source: acpi.sci_irq,
    gsi: acpi.sci_irq,
    flags: INTI.LEVEL | INTI.ACTIVE_LOW,
  });
  return out;
}

function irqDescriptor(irq: number): Uint8Array {
  return irq <= 15 ? aml.irqNoFlags([irq]) : aml.extendedInterrupt(irq);
}

/** Address of bus 0's configuration space for the segment (MCFG and Linux count from bus 0). */
export function mcfgEntry(plan: Plan): McfgEntry | null {
  const ecam = plan.hole?.ecam;
  if (!ecam) return null;
  return {
    base: ecam.base - ecam.bus_start * 0x10_0000,
    segment: ecam.segment,
    busStart: ecam.bus_start,
    busEnd: ecam.bus_end,
  };
}

function pciRootBridge(plan: Plan): Uint8Array[] {
  const hole = plan.hole;
  if (!hole) return [];
  const ecam = hole.ecam;
  const busStart = ecam?.bus_start ?? 0;
  const busEnd = ecam?.bus_end ?? 0xff;
  const crs: Uint8Array[] = [
    aml.wordBusNumber({ min: busStart, max: busEnd }),
    // The configuration mechanism #1 ports the host bridge itself decodes.
    aml.io(0xcf8, 8),
    aml.wordIo({ min: hole.io.base, max: hole.io.base + hole.io.size - 1 }),
    aml.dwordMemory({ min: hole.mmio32.base, max: hole.mmio32.base + hole.mmio32.size - 1 }),
  ];
  if (hole.mmio64) {
    crs.push(
      aml.qwordMemory({ min: hole.mmio64.base, max: hole.mmio64.base + hole.mmio64.size - 1 }),
    );
  }
  const terms: Uint8Array[] = [
    // PCI Express root bridge when the machine has ECAM, else a conventional PCI one.
    aml.name("_HID", aml.eisaId(ecam ? "PNP0A08" : "PNP0A03")),
    ...(ecam ? [aml.name("_CID", aml.eisaId("PNP0A03"))] : []),
    aml.name("_UID", aml.integer(ecam?.segment ?? 0)),
    aml.name("_SEG", aml.integer(ecam?.segment ?? 0)),
    aml.name("_BBN", aml.integer(busStart)),
    aml.name("_CRS", aml.resourceTemplate(crs)),
  ];
  // Interrupt routing of the functions on the root bus: GSIs directly (no link devices).
  const seen = new Set<string>();
  const prt: Uint8Array[] = [];
  for (const f of plan.pci) {
    if (f.bus !== busStart || f.interrupt_pin === 0 || f.irq === null) continue;
    const key = `${f.device}/${f.interrupt_pin}`;
    if (seen.has(key)) continue;
    seen.add(key);
    prt.push(aml.pkg([
      aml.integer(f.device * 0x10000 + 0xffff),
      aml.integer(f.interrupt_pin - 1),
      aml.integer(0),
      aml.integer(f.irq),
    ]));
  }
  if (prt.length > 0) terms.push(aml.name("_PRT", aml.pkg(prt)));
  return [aml.device("PCI0", terms)];
}

/**
 * Motherboard resources (PNP0C02) reserving the ECAM window: Linux checks that MMCONFIG
 * is reserved there before it trusts the MCFG once the ACPI interpreter runs.
 */
function ecamReservation(plan: Plan): Uint8Array[] {
  const ecam = plan.hole?.ecam;
  if (!ecam) return [];
  const res = ecam.base + ecam.size <= 2 ** 32
    ? aml.memory32Fixed(ecam.base, ecam.size)
    : aml.qwordMemory({ min: ecam.base, max: ecam.base + ecam.size - 1, consumer: true });
  return [aml.device("MRES", [
    aml.name("_HID", aml.eisaId("PNP0C02")),
    aml.name("_UID", aml.integer(0)),
    aml.name("_CRS", aml.resourceTemplate([res])),
  ])];
}

function serialPorts(plan: Plan): Uint8Array[] {
  const serials = plan.devices.filter((d) => d.kind === "serial" && d.ports.length > 0);
  return serials.slice(0, 9).map((d, i) => {
    const crs = [aml.io(d.ports[0].base, Math.min(d.ports[0].size, 8))];
    if (d.irq !== null) crs.push(irqDescriptor(d.irq));
    return aml.device(`COM${i + 1}`, [
      aml.name("_HID", aml.eisaId("PNP0501")),
      aml.name("_UID", aml.integer(i + 1)),
      aml.name("_CRS", aml.resourceTemplate(crs)),
    ]);
  });
}

function i8042Device(plan: Plan): DevicePlan | undefined {
  return plan.devices.find((d) => d.kind === "i8042" && d.ports.length > 0);
}

/** The keyboard controller as PNP0303 so Linux's i8042 driver finds its ports through ACPI. */
function keyboard(plan: Plan): Uint8Array[] {
  const kbd = i8042Device(plan);
  if (!kbd) return [];
  const data = kbd.ports[0].base;
  const crs = [aml.io(data, 1), aml.io(data + 4, 1)];
  if (kbd.irq !== null) crs.push(irqDescriptor(kbd.irq));
  return [aml.device("PS2K", [
    aml.name("_HID", aml.eisaId("PNP0303")),
    aml.name("_UID", aml.integer(0)),
    aml.name("_CRS", aml.resourceTemplate(crs)),
  ])];
}

/** The device holding the sleep registers, when the machine has one (two ports). */
function sleepDevice(plan: Plan): DevicePlan | undefined {
  return plan.devices.find((d) => d.kind === "acpi_sleep" && d.ports[0]?.size >= 2);
}

/**
 * `\_S5`: the sleep type the guest writes to the sleep control register to power off, the
 * sleep device's `s5_type` (the device model reads the same property). One integer, as the
 * specification has it (SLP_TYPa in bits 7:0; SLP_TYPb, unused in hardware-reduced mode,
 * 0). No other sleep state is offered.
 */
function sleepStates(plan: Plan): Uint8Array[] {
  const dev = sleepDevice(plan);
  if (!dev) return [];
  const t = dev.props.s5_type;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t > 7) {
    throw new AcpiPlanError(
      `device ${dev.id}: props.s5_type must be a sleep type 0..7, not ${JSON.stringify(t)}`,
      'give the acpi_sleep device the SLP_TYP of S5, e.g. "s5_type": 5',
    );
  }
  return [aml.name("\\_S5_", aml.pkg([aml.integer(t)]))];
}

/**
 * Virtio-mmio devices as Linux's virtio-mmio ACPI binding (and QEMU microvm) describes
 * them: _HID "LNRO0005", _CRS with the register page and the interrupt (edge, active high:
 * the device makes a fresh edge for every cause the driver has not acknowledged).
 */
function virtioMmioDevices(plan: Plan): Uint8Array[] {
  const devs = plan.devices.filter((d) =>
    d.virtio?.transport.kind === "mmio" && d.mmio.length > 0 && d.irq !== null
  );
  return devs.slice(0, 256).map((d, i) => {
    const r = d.mmio[0];
    const mem = r.base + r.size <= 2 ** 32
      ? aml.memory32Fixed(r.base, r.size)
      : aml.qwordMemory({ min: r.base, max: r.base + r.size - 1, consumer: true });
    return aml.device(`VR${i.toString(16).toUpperCase().padStart(2, "0")}`, [
      aml.name("_HID", aml.string("LNRO0005")),
      aml.name("_UID", aml.integer(i)),
      aml.name("_CRS", aml.resourceTemplate([mem, aml.extendedInterrupt(d.irq!)])),
    ]);
  });
}

/** The DSDT's AML: the sleep states at the root, devices under \_SB. */
export function dsdtAml(plan: Plan): Uint8Array {
  return aml.concat([
    ...sleepStates(plan),
    aml.scope("\\_SB_", [
      ...pciRootBridge(plan),
      ...ecamReservation(plan),
      ...serialPorts(plan),
      ...keyboard(plan),
      ...virtioMmioDevices(plan),
    ]),
  ]);
}

function covers(d: DevicePlan, port: number): boolean {
  return d.ports.some((r) => port >= r.base && port < r.base + r.size);
}

/** Builds every table and places it. Requires `plan.acpi` (throws AcpiPlanError otherwise). */
export function buildAcpi(plan: Plan): AcpiBuild {
  const acpi = plan.acpi;
  if (!acpi) {
    throw new AcpiPlanError(
      `machine "${plan.machine}" has no ACPI section in its Plan`,
      "lower the machine again with a current vmdesc, or boot it without ACPI",
    );
  }
  const oem: Oem = { id: acpi.oem_id, tableId: acpi.oem_table_id };

  const kbd = i8042Device(plan);
  const sleep = sleepDevice(plan);
  const legacy = plan.devices.some((d) => d.kind === "serial" || d.kind === "i8042");
  let bootArch = IAPC_BOOT_ARCH.VGA_NOT_PRESENT;
  if (legacy) bootArch |= IAPC_BOOT_ARCH.LEGACY_DEVICES;
  if (kbd) bootArch |= IAPC_BOOT_ARCH.I8042;
  if (!plan.devices.some((d) => d.kind === "rtc" || d.kind === "cmos")) {
    bootArch |= IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT;
  }

  // Lay the tables out one after another; DSDT first since the FADT points at it.
  let cursor = acpi.tables_addr;
  const place = (size: number) => {
    const at = cursor;
    cursor = align16(cursor + size);
    return at;
  };
  const tables: AcpiTable[] = [];
  const dsdtBytes = dsdt(oem, dsdtAml(plan));
  const dsdtAddr = place(dsdtBytes.length);
  tables.push({ signature: "DSDT", addr: dsdtAddr, bytes: dsdtBytes });

  const fadtBytes = fadt(oem, {
    dsdtAddr,
    sciIrq: acpi.sci_irq,
    iapcBootArch: bootArch,
    reset: kbd && covers(kbd, 0x64) ? { port: 0x64, value: 0xfe } : null,
    sleep: sleep ? { control: sleep.ports[0].base, status: sleep.ports[0].base + 1 } : null,
  });
  tables.push({ signature: "FACP", addr: place(fadtBytes.length), bytes: fadtBytes });

  const madtBytes = madt(oem, {
    lapicBase: plan.platform.lapic_base,
    apicIds: Array.from({ length: plan.cpus.count }, (_, i) => i),
    ioapic: {
      id: plan.platform.ioapic.id,
      base: plan.platform.ioapic.base,
      gsiBase: plan.platform.ioapic.gsi_base,
    },
    overrides: overrides(plan),
    // KVM's in-kernel irqchip includes the dual 8259.
    pcatCompat: plan.platform.irqchip === "kernel",
  });
  tables.push({ signature: "APIC", addr: place(madtBytes.length), bytes: madtBytes });

  const entry = mcfgEntry(plan);
  if (entry) {
    const mcfgBytes = mcfg(oem, [entry]);
    tables.push({ signature: "MCFG", addr: place(mcfgBytes.length), bytes: mcfgBytes });
  }

  const xsdtBytes = xsdt(oem, tables.filter((t) => t.signature !== "DSDT").map((t) => t.addr));
  tables.push({ signature: "XSDT", addr: place(xsdtBytes.length), bytes: xsdtBytes });

  const used = tables.reduce((end, t) => Math.max(end, t.addr + t.bytes.length), 0) -
    acpi.tables_addr;
  if (used > acpi.tables_size) {
    throw new AcpiPlanError(
      `the ACPI tables need ${used} bytes but the Plan reserves ${acpi.tables_size}`,
      'reserve more bytes for ACPI tables in the Plan (acpi.tables_size and its e820 "acpi" range)',
    );
  }
  const xsdtAddr = tables[tables.length - 1].addr;
  const rsdpBytes = rsdp(oem.id, xsdtAddr);
  if (acpi.rsdp_addr % 16 !== 0) {
    throw new AcpiPlanError(
      `the RSDP address 0x${acpi.rsdp_addr.toString(16)} is not 16-byte aligned`,
      "legacy scans look for the RSDP only on 16-byte boundaries",
    );
  }
  if (acpi.rsdp_addr < acpi.tables_addr + used && acpi.rsdp_addr + 36 > acpi.tables_addr) {
    throw new AcpiPlanError(
      "the RSDP overlaps the other ACPI tables",
      "place acpi.rsdp_addr outside acpi.tables_addr .. + tables_size",
    );
  }
  const all: AcpiTable[] = [
    { signature: "RSDP", addr: acpi.rsdp_addr, bytes: rsdpBytes },
    ...tables,
  ];
  return {
    rsdpAddr: acpi.rsdp_addr,
    blobs: all.map(({ addr, bytes }) => ({ addr, bytes })),
    tables: all,
  };
}
