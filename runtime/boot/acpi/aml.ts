/**
 * A small AML (ACPI Machine Language) encoder: just the terms a static DSDT needs.
 *
 * Every builder returns the encoded bytes of one term, so a namespace is written as nested
 * calls (`scope("\\_SB_", [device("PCI0", [name("_HID", eisaId("PNP0A08"))])])`). Nothing
 * here evaluates AML; the tests disassemble the result with `iasl -d`.
 *
 * Encodings follow the ACPI specification, chapter 20 (AML grammar) and section 6.4
 * (resource data types).
 */

export type Aml = Uint8Array;

/** Joins byte strings (AML packages and ACPI tables are built from parts). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Little-endian integer of `bytes` bytes (up to 8), from a number that fits in 53 bits. */
function le(value: number, bytes: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bad AML integer ${value}`);
  const out = new Uint8Array(bytes);
  let v = BigInt(value);
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n) throw new RangeError(`AML value ${value} does not fit in ${bytes} bytes`);
  return out;
}

/**
 * PkgLength: the length of what follows *including* the PkgLength bytes themselves.
 * One byte holds up to 63; otherwise the lead byte carries the count of extra bytes in
 * bits 7-6 and the low nibble, and each extra byte 8 more bits.
 */
export function pkgLength(contentLength: number): Uint8Array {
  if (contentLength + 1 < 0x40) return Uint8Array.of(contentLength + 1);
  for (let extra = 1; extra <= 3; extra++) {
    const total = contentLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const out = new Uint8Array(1 + extra);
      out[0] = (extra << 6) | (total & 0x0f);
      for (let i = 0; i < extra; i++) out[1 + i] = (total >> (4 + 8 * i)) & 0xff;
      return out;
    }
  }
  throw new RangeError(`AML package too long: ${contentLength} bytes`);
}

function withPkg(op: readonly number[], body: Uint8Array): Uint8Array {
  return concat([Uint8Array.from(op), pkgLength(body.length), body]);
}

const SEG_CHARS = /^[A-Z_][A-Z0-9_]{0,3}$/;

function nameSeg(seg: string): Uint8Array {
  if (!SEG_CHARS.test(seg)) throw new RangeError(`bad AML name segment "${seg}"`);
  return new TextEncoder().encode(seg.padEnd(4, "_"));
}

/**
 * A NameString: `\` root prefix and `^` parent prefixes, then segments joined by `.`
 * (each up to four characters, padded with `_`).
 */
export function nameString(path: string): Uint8Array {
  let i = 0;
  const prefix: number[] = [];
  if (path.startsWith("\\")) {
    prefix.push(0x5c);
    i = 1;
  } else {
    while (path[i] === "^") {
      prefix.push(0x5e);
      i++;
    }
  }
  const rest = path.slice(i);
  const segs = rest === "" ? [] : rest.split(".");
  let body: Uint8Array;
  if (segs.length === 0) body = Uint8Array.of(0x00); // NullName
  else if (segs.length === 1) body = nameSeg(segs[0]);
  else if (segs.length === 2) body = concat([Uint8Array.of(0x2e), ...segs.map(nameSeg)]);
  else body = concat([Uint8Array.of(0x2f, segs.length), ...segs.map(nameSeg)]);
  return concat([Uint8Array.from(prefix), body]);
}

/** The shortest integer encoding: Zero, One, Ones or a Byte/Word/DWord/QWord constant. */
export function integer(value: number): Uint8Array {
  if (value === 0) return Uint8Array.of(0x00);
  if (value === 1) return Uint8Array.of(0x01);
  if (value <= 0xff) return concat([Uint8Array.of(0x0a), le(value, 1)]);
  if (value <= 0xffff) return concat([Uint8Array.of(0x0b), le(value, 2)]);
  if (value <= 0xffff_ffff) return concat([Uint8Array.of(0x0c), le(value, 4)]);
  return concat([Uint8Array.of(0x0e), le(value, 8)]);
}

/** A DWord constant always 4 bytes wide (EISA IDs are written this way by iasl). */
export function dword(value: number): Uint8Array {
  return concat([Uint8Array.of(0x0c), le(value, 4)]);
}

export function string(s: string): Uint8Array {
  if ([...s].some((c) => c.charCodeAt(0) < 1 || c.charCodeAt(0) > 0x7f)) {
    throw new RangeError(`AML strings are ASCII: "${s}"`);
  }
  return concat([Uint8Array.of(0x0d), new TextEncoder().encode(s), Uint8Array.of(0)]);
}

/**
 * EISAID("PNP0A08"): three letters in 5 bits each, then four hex digits, stored
 * big-endian in a DWord (so the bytes read 41 D0 0A 08).
 */
export function eisaIdValue(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`bad EISA id "${id}"`);
  const c = (k: number) => id.charCodeAt(k) - 0x40;
  const v = ((c(0) << 26) | (c(1) << 21) | (c(2) << 16) | parseInt(id.slice(3), 16)) >>> 0;
  // byte-swap: the compressed id is big-endian in memory, AML integers are little-endian
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

export function eisaId(id: string): Uint8Array {
  return dword(eisaIdValue(id));
}

export function buffer(bytes: Uint8Array): Uint8Array {
  return withPkg([0x11], concat([integer(bytes.length), bytes]));
}

export function pkg(elements: readonly Uint8Array[]): Uint8Array {
  if (elements.length > 255) throw new RangeError("AML Package with more than 255 elements");
  return withPkg([0x12], concat([Uint8Array.of(elements.length), ...elements]));
}

export function name(path: string, value: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(0x08), nameString(path), value]);
}

export function scope(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return withPkg([0x10], concat([nameString(path), ...terms]));
}

export function device(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return withPkg([0x5b, 0x82], concat([nameString(path), ...terms]));
}

/** A not-serialized method taking `args` arguments whose body is the given terms. */
export function method(path: string, args: number, terms: readonly Uint8Array[]): Uint8Array {
  if (args < 0 || args > 7) throw new RangeError("AML methods take 0..7 arguments");
  return withPkg([0x14], concat([nameString(path), Uint8Array.of(args), ...terms]));
}

export function ret(value: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(0xa4), value]);
}

// ── resource descriptors (ACPI 6.4 §6.4) ─────────────────────────────────────────────

/** General flags of address space descriptors: producer, positive decode, fixed min and max. */
const ADDR_PRODUCER_FIXED = 0x0c;
const ADDR_CONSUMER_FIXED = 0x0d;

export interface AddressSpace {
  min: number;
  /** Inclusive. */
  max: number;
  /** ResourceConsumer (bit 0 set) or ResourceProducer (bridges pass windows downstream). */
  consumer?: boolean;
}

function addressDescriptor(
  tag: number,
  width: number,
  type: number,
  typeFlags: number,
  r: AddressSpace,
): Uint8Array {
  const len = r.max - r.min + 1;
  const body = concat([
    Uint8Array.of(type, r.consumer ? ADDR_CONSUMER_FIXED : ADDR_PRODUCER_FIXED, typeFlags),
    le(0, width), // granularity: 0 = no alignment restriction on a fixed range
    le(r.min, width),
    le(r.max, width),
    le(0, width), // translation offset: identity
    le(len, width),
  ]);
  return concat([Uint8Array.of(tag), le(body.length, 2), body]);
}

/** WordBusNumber: a bus number range decoded by a root bridge. */
export function wordBusNumber(r: AddressSpace): Uint8Array {
  return addressDescriptor(0x88, 2, 2, 0x00, r);
}

/** WordIO over the entire ISA/non-ISA range. */
export function wordIo(r: AddressSpace): Uint8Array {
  return addressDescriptor(0x88, 2, 1, 0x03, r);
}

/** Memory type flags: bit 0 read-write, bits 1-2 cacheability (0 non-cacheable, 3 prefetchable). */
function memFlags(prefetchable: boolean): number {
  return 0x01 | (prefetchable ? 0x06 : 0x00);
}

export function dwordMemory(r: AddressSpace, prefetchable = false): Uint8Array {
  return addressDescriptor(0x87, 4, 0, memFlags(prefetchable), r);
}

export function qwordMemory(r: AddressSpace, prefetchable = false): Uint8Array {
  return addressDescriptor(0x8a, 8, 0, memFlags(prefetchable), r);
}

/** IO(Decode16, base, base, 1, length): a fixed port range. */
export function io(base: number, length: number): Uint8Array {
  return concat([Uint8Array.of(0x47, 0x01), le(base, 2), le(base, 2), Uint8Array.of(1, length)]);
}

/** IRQNoFlags(){n, ...}: ISA edge-triggered, active-high interrupts. */
export function irqNoFlags(irqs: readonly number[]): Uint8Array {
  let mask = 0;
  for (const i of irqs) {
    if (i < 0 || i > 15) throw new RangeError(`ISA IRQ ${i} out of range`);
    mask |= 1 << i;
  }
  return concat([Uint8Array.of(0x22), le(mask, 2)]);
}

/**
 * Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive){gsi}: the extended descriptor,
 * for interrupts above 15 that IRQNoFlags cannot name.
 */
export function extendedInterrupt(gsi: number): Uint8Array {
  return concat([Uint8Array.of(0x89), le(6, 2), Uint8Array.of(0x03, 1), le(gsi, 4)]);
}

/** Memory32Fixed(ReadWrite, base, length). */
export function memory32Fixed(base: number, length: number): Uint8Array {
  return concat([Uint8Array.of(0x86), le(9, 2), Uint8Array.of(0x01), le(base, 4), le(length, 4)]);
}

/** ResourceTemplate(){...}: the descriptors in a Buffer, closed by an End Tag (checksum 0). */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Uint8Array {
  return buffer(concat([...descriptors, Uint8Array.of(0x79, 0x00)]));
}
