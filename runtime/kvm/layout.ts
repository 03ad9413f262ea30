/**
 * A tiny struct-layout helper. Each KVM structure is declared once (in `abi.ts`) as a size
 * plus fields keyed by their C member designator ("io.port", "fail_entry.cpu"), so a test
 * can ask gcc for `offsetof(struct kvm_run, io.port)` and compare every field and size
 * with the kernel headers. Everything else reads and writes structures through these
 * definitions: no stray offsets.
 */

export interface Field {
  /** Byte offset from the start of the structure. */
  readonly off: number;
  /** Width in bytes of one element (1, 2, 4 or 8). */
  readonly size: number;
  /** Number of elements (arrays), 1 for scalars. */
  readonly count: number;
}

export interface Layout<F extends string> {
  /** C type name, e.g. "struct kvm_run". */
  readonly ctype: string;
  readonly size: number;
  readonly f: { readonly [K in F]: Field };
}

/** Declares a layout: fields as [offset, width] or [offset, width, count]. */
export function layout<F extends string>(
  ctype: string,
  size: number,
  fields: { [K in F]: readonly [number, number] | readonly [number, number, number] },
): Layout<F> {
  const f = {} as { [K in F]: Field };
  for (const k of Object.keys(fields) as F[]) {
    const [off, width, count = 1] = fields[k];
    f[k] = { off, size: width, count };
  }
  return { ctype, size, f };
}

/** Reads an unsigned little-endian field (8-byte fields as number: addresses fit in 2^53). */
export function getField(dv: DataView, base: number, fld: Field, index = 0): number {
  const o = base + fld.off + index * fld.size;
  switch (fld.size) {
    case 1:
      return dv.getUint8(o);
    case 2:
      return dv.getUint16(o, true);
    case 4:
      return dv.getUint32(o, true);
    default:
      return Number(dv.getBigUint64(o, true));
  }
}

export function getField64(dv: DataView, base: number, fld: Field, index = 0): bigint {
  return dv.getBigUint64(base + fld.off + index * fld.size, true);
}

export function setField(
  dv: DataView,
  base: number,
  fld: Field,
  value: number | bigint,
  index = 0,
): void {
  const o = base + fld.off + index * fld.size;
  switch (fld.size) {
    case 1:
      dv.setUint8(o, Number(value));
      return;
    case 2:
      dv.setUint16(o, Number(value), true);
      return;
    case 4:
      dv.setUint32(o, Number(value), true);
      return;
    default:
      dv.setBigUint64(o, BigInt(value), true);
  }
}

/** A zeroed buffer for one structure plus typed accessors by field name. */
export class Struct<F extends string> {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly dv: DataView;
  constructor(readonly layout: Layout<F>, extra = 0) {
    this.bytes = new Uint8Array(layout.size + extra);
    this.dv = new DataView(this.bytes.buffer);
  }
  get(name: F, index = 0): number {
    return getField(this.dv, 0, this.layout.f[name], index);
  }
  get64(name: F, index = 0): bigint {
    return getField64(this.dv, 0, this.layout.f[name], index);
  }
  set(name: F, value: number | bigint, index = 0): this {
    setField(this.dv, 0, this.layout.f[name], value, index);
    return this;
  }
}
