/**
 * Byte layouts of the static ACPI tables vmdesc builds (ACPI 6.x, chapter 5.2), each a
 * pure function from a few numbers to bytes. `mod.ts` decides what goes in them from the
 * Plan and where they are placed.
 */
import { concat } from "./aml.ts";

export const CREATOR_ID = "VMDS";
export const CREATOR_REVISION = 1;
export const OEM_REVISION = 1;

export interface Oem {
  /** 6 ASCII characters (shorter ids are padded with spaces). */
  id: string;
  /** 8 ASCII characters. */
  tableId: string;
}

class Writer {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u8(off: number, v: number) {
    this.view.setUint8(off, v);
  }
  u16(off: number, v: number) {
    this.view.setUint16(off, v, true);
  }
  u32(off: number, v: number) {
    this.view.setUint32(off, v >>> 0, true);
  }
  u64(off: number, v: number) {
    this.view.setBigUint64(off, BigInt(v), true);
  }
  ascii(off: number, s: string, len: number) {
    const padded = s.padEnd(len, " ").slice(0, len);
    for (let i = 0; i < len; i++) {
      const c = padded.charCodeAt(i);
      if (c < 0x20 || c > 0x7e) throw new RangeError(`ACPI ids are printable ASCII: "${s}"`);
      this.bytes[off + i] = c;
    }
  }
}

/** The byte that makes `bytes[start, end)` sum to zero modulo 256. */
export function checksumByte(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum = (sum + bytes[i]) & 0xff;
  return (0x100 - sum) & 0xff;
}

export function sumsToZero(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  let sum = 0;
  for (let i = start; i < end; i++) sum = (sum + bytes[i]) & 0xff;
  return sum === 0;
}

const HEADER = 36;

/** A System Description Table: the 36-byte header, then `body`, checksum filled in. */
export function sdt(signature: string, revision: number, oem: Oem, body: Uint8Array): Uint8Array {
  const w = new Writer(HEADER + body.length);
  w.ascii(0, signature, 4);
  w.u32(4, HEADER + body.length);
  w.u8(8, revision);
  w.ascii(10, oem.id, 6);
  w.ascii(16, oem.tableId, 8);
  w.u32(24, OEM_REVISION);
  w.ascii(28, CREATOR_ID, 4);
  w.u32(32, CREATOR_REVISION);
  w.bytes.set(body, HEADER);
  w.u8(9, checksumByte(w.bytes));
  return w.bytes;
}

/**
 * RSDP, ACPI 2.0+ form (36 bytes, revision 2): the first 20 bytes carry the legacy
 * checksum, the whole structure the extended one. There is no RSDT (address 0): every
 * table is reached through the XSDT, which Linux and ACPICA prefer when revision >= 2.
 */
export function rsdp(oemId: string, xsdtAddr: number): Uint8Array {
  const w = new Writer(36);
  w.ascii(0, "RSD PTR ", 8);
  w.ascii(9, oemId, 6);
  w.u8(15, 2);
  w.u32(16, 0);
  w.u32(20, 36);
  w.u64(24, xsdtAddr);
  w.u8(8, checksumByte(w.bytes, 0, 20));
  w.u8(32, checksumByte(w.bytes, 0, 36));
  return w.bytes;
}

export function xsdt(oem: Oem, entries: readonly number[]): Uint8Array {
  const w = new Writer(8 * entries.length);
  entries.forEach((a, i) => w.u64(8 * i, a));
  return sdt("XSDT", 1, oem, w.bytes);
}

export interface FadtOptions {
  dsdtAddr: number;
  sciIrq: number;
  /** IA-PC boot architecture flags (FADT offset 109). */
  iapcBootArch: number;
  /** I/O port of a reset register (8 bits wide) and the value to write, or null. */
  reset: { port: number; value: number } | null;
  /** I/O ports of the 8-bit sleep control and sleep status registers, or null. */
  sleep: { control: number; status: number } | null;
}

/** FADT flag bits (ACPI 6.4 table 5.10). */
export const FADT_FLAGS = {
  WBINVD: 1 << 0,
  PWR_BUTTON: 1 << 4,
  SLP_BUTTON: 1 << 5,
  RESET_REG_SUP: 1 << 10,
  HW_REDUCED_ACPI: 1 << 20,
} as const;

/** IA-PC boot architecture flags (ACPI 6.4 table 5.11). */
export const IAPC_BOOT_ARCH = {
  LEGACY_DEVICES: 1 << 0,
  I8042: 1 << 1,
  VGA_NOT_PRESENT: 1 << 2,
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;

export const FADT_REVISION = 6;
export const FADT_MINOR_REVISION = 3;
const FADT_LENGTH = 276;

/**
 * FADT revision 6 in hardware-reduced mode (HW_REDUCED_ACPI set).
 *
 * Why hardware-reduced: a vmdesc machine has no ACPI fixed hardware — no PM1 event or
 * control blocks, no PM timer, no GPE blocks, no SMI command port. A full-hardware FADT
 * would have to name those registers, and ACPICA reports every missing one as a firmware
 * bug. In hardware-reduced mode they are all absent by definition, the FACS is optional
 * (FIRMWARE_CTRL and X_FIRMWARE_CTRL are 0), and the SCI number is still given for
 * devices that may signal events later. QEMU's microvm, Firecracker and Cloud Hypervisor
 * describe their guests the same way, and Linux boots them.
 *
 * DSDT and X_DSDT carry the same address (the tables live below 4 GiB); ACPICA warns
 * only when the two disagree.
 *
 * Sleep: with no PM1 control block, a hardware-reduced machine sleeps (and powers off)
 * through the SLEEP_CONTROL_REG and SLEEP_STATUS_REG (ACPI 6.4 §4.8.3.7); Linux offers
 * `poweroff` through ACPI only when both are present and the DSDT has `\_S5`.
 */
export function fadt(oem: Oem, o: FadtOptions): Uint8Array {
  const w = new Writer(FADT_LENGTH - HEADER);
  const at = (off: number) => off - HEADER; // offsets below are the spec's, from the header
  w.u32(at(36), 0); // FIRMWARE_CTRL: no FACS
  w.u32(at(40), o.dsdtAddr);
  w.u8(at(45), 0); // Preferred_PM_Profile: unspecified
  w.u16(at(46), o.sciIrq);
  // SMI_CMD (48) = 0: no SMM, the machine is always in ACPI mode.
  w.u16(at(109), o.iapcBootArch);
  let flags = FADT_FLAGS.WBINVD | FADT_FLAGS.PWR_BUTTON | FADT_FLAGS.SLP_BUTTON |
    FADT_FLAGS.HW_REDUCED_ACPI;
  if (o.reset) {
    flags |= FADT_FLAGS.RESET_REG_SUP;
    // RESET_REG: Generic Address Structure, system I/O space, 8 bits, byte access.
    w.u8(at(116), 1);
    w.u8(at(117), 8);
    w.u8(at(118), 0);
    w.u8(at(119), 1);
    w.u64(at(120), o.reset.port);
    w.u8(at(128), o.reset.value);
  }
  if (o.sleep) {
    ioRegister8(w, at(244), o.sleep.control); // SLEEP_CONTROL_REG
    ioRegister8(w, at(256), o.sleep.status); // SLEEP_STATUS_REG
  }
  w.u32(at(112), flags);
  w.u8(at(131), FADT_MINOR_REVISION);
  // X_FIRMWARE_CTRL (132) = 0
  w.u64(at(140), o.dsdtAddr);
  return sdt("FACP", FADT_REVISION, oem, w.bytes);
}

/** A Generic Address Structure for an 8-bit register in system I/O space. */
function ioRegister8(w: Writer, off: number, port: number): void {
  w.u8(off, 1); // address space: system I/O
  w.u8(off + 1, 8); // register bit width
  w.u8(off + 2, 0); // bit offset
  w.u8(off + 3, 1); // access size: byte
  w.u64(off + 4, port);
}

export interface MadtOptions {
  lapicBase: number;
  /** APIC id of each vCPU, in vCPU order (ACPI processor UID = index). */
  apicIds: readonly number[];
  ioapic: { id: number; base: number; gsiBase: number };
  /** Interrupt source overrides: ISA IRQ → GSI with MPS INTI flags. */
  overrides: readonly { source: number; gsi: number; flags: number }[];
  /** Whether a dual 8259 PIC is present (PCAT_COMPAT). */
  pcatCompat: boolean;
}

/** MPS INTI flags: polarity in bits 0-1 (1 high, 3 low), trigger mode in bits 2-3 (1 edge, 3 level). */
export const INTI = {
  CONFORMING: 0,
  ACTIVE_HIGH: 1,
  ACTIVE_LOW: 3,
  EDGE: 1 << 2,
  LEVEL: 3 << 2,
} as const;

/**
 * MADT: one Processor Local APIC per vCPU (Processor Local x2APIC for ids above 254),
 * the I/O APIC, the interrupt source overrides, and a Local APIC NMI on LINT1 for all
 * processors (the wiring of a PC: NMI comes in on LINT1).
 */
export function madt(oem: Oem, o: MadtOptions): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new Writer(8);
  head.u32(0, o.lapicBase);
  head.u32(4, o.pcatCompat ? 1 : 0);
  parts.push(head.bytes);
  const anyX2 = o.apicIds.some((id) => id >= 0xff);
  o.apicIds.forEach((apicId, uid) => {
    if (apicId < 0xff && uid < 0xff) {
      const e = new Writer(8);
      e.u8(0, 0);
      e.u8(1, 8);
      e.u8(2, uid);
      e.u8(3, apicId);
      e.u32(4, 1); // enabled
      parts.push(e.bytes);
    } else {
      const e = new Writer(16);
      e.u8(0, 9);
      e.u8(1, 16);
      e.u32(4, apicId);
      e.u32(8, 1);
      e.u32(12, uid);
      parts.push(e.bytes);
    }
  });
  const io = new Writer(12);
  io.u8(0, 1);
  io.u8(1, 12);
  io.u8(2, o.ioapic.id);
  io.u32(4, o.ioapic.base);
  io.u32(8, o.ioapic.gsiBase);
  parts.push(io.bytes);
  for (const ov of o.overrides) {
    const e = new Writer(10);
    e.u8(0, 2);
    e.u8(1, 10);
    e.u8(2, 0); // bus: ISA
    e.u8(3, ov.source);
    e.u32(4, ov.gsi);
    e.u16(8, ov.flags);
    parts.push(e.bytes);
  }
  const nmi = new Writer(6);
  nmi.u8(0, 4);
  nmi.u8(1, 6);
  nmi.u8(2, 0xff); // all processors
  nmi.u16(3, INTI.CONFORMING);
  nmi.u8(5, 1); // LINT1
  parts.push(nmi.bytes);
  if (anyX2) {
    const x = new Writer(12);
    x.u8(0, 0x0a);
    x.u8(1, 12);
    x.u16(2, INTI.CONFORMING);
    x.u32(4, 0xffff_ffff); // all processors
    x.u8(8, 1);
    parts.push(x.bytes);
  }
  return sdt("APIC", 5, oem, concat(parts));
}

export interface McfgEntry {
  /** Address of bus 0's configuration space in this segment (even when bus_start > 0). */
  base: number;
  segment: number;
  busStart: number;
  busEnd: number;
}

/** MCFG: 8 reserved bytes, then one 16-byte allocation entry per ECAM window. */
export function mcfg(oem: Oem, entries: readonly McfgEntry[]): Uint8Array {
  const w = new Writer(8 + 16 * entries.length);
  entries.forEach((e, i) => {
    const off = 8 + 16 * i;
    w.u64(off, e.base);
    w.u16(off + 8, e.segment);
    w.u8(off + 10, e.busStart);
    w.u8(off + 11, e.busEnd);
  });
  return sdt("MCFG", 1, oem, w.bytes);
}

/** DSDT revision 2: AML integers are 64 bits wide (needed for the 64-bit MMIO window). */
export function dsdt(oem: Oem, aml: Uint8Array): Uint8Array {
  return sdt("DSDT", 2, oem, aml);
}
