/**
 * One vCPU: its fd, its shared `kvm_run` page, and register access. The same class is
 * used by the main thread (setup: registers, CPUID) and by the vCPU's worker (run loop):
 * fds and mappings are process-wide, so a worker rebuilds a Vcpu from plain numbers.
 */
import * as host from "../host/libc.ts";
import {
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_DTABLE,
  KVM_GET_MP_STATE,
  KVM_GET_REGS,
  KVM_GET_SREGS,
  KVM_MP_STATE,
  KVM_REGS,
  KVM_RUN_STRUCT,
  KVM_SEGMENT,
  KVM_SET_CPUID2,
  KVM_SET_MP_STATE,
  KVM_SET_REGS,
  KVM_SET_SREGS,
  KVM_SREGS,
  type RegName,
  type SegName,
} from "./abi.ts";
import { getField, type Layout, setField, Struct } from "./layout.ts";
import type { GuestMemory } from "../memory/mod.ts";

export type Regs = Struct<RegName>;
export type Sregs = Struct<keyof typeof KVM_SREGS.f>;

/** The fields of a kvm_segment, as numbers. */
export interface Segment {
  base: number;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl?: number;
  unusable?: number;
}

export const CR0_PE = 1;
export const CR0_ET = 1 << 4;
export const CR0_PG = 0x8000_0000;
/** Cache disable and not-write-through: set at power-on, kept as they are by INIT. */
const CR0_NW = 1n << 29n;
const CR0_CD = 1n << 30n;
/** CR0 at a 32-bit protected-mode entry: PE (and the read-only ET), nothing else. */
export const PROTECTED_MODE_CR0 = CR0_PE | CR0_ET;
export const CR4_PAE = 1 << 5;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;

/** Flat 4 GiB segments: 32-bit code (execute/read, accessed), data (read/write, accessed). */
export const FLAT_CODE32: Segment = {
  base: 0,
  limit: 0xffff_ffff,
  selector: 0x10,
  type: 0xb,
  present: 1,
  dpl: 0,
  db: 1,
  s: 1,
  l: 0,
  g: 1,
};
export const FLAT_DATA: Segment = {
  base: 0,
  limit: 0xffff_ffff,
  selector: 0x18,
  type: 0x3,
  present: 1,
  dpl: 0,
  db: 1,
  s: 1,
  l: 0,
  g: 1,
};
export const FLAT_CODE64: Segment = { ...FLAT_CODE32, db: 0, l: 1 };

/** GDT descriptor words for the segments above (selector 0x10 code, 0x18 data). */
function descriptor(seg: Segment): bigint {
  const lim = seg.g ? seg.limit >>> 12 : seg.limit;
  const access = BigInt(seg.type | (seg.s << 4) | (seg.dpl << 5) | (seg.present << 7));
  const flags = BigInt((seg.l << 1) | (seg.db << 2) | (seg.g << 3));
  const b = BigInt(seg.base);
  return (BigInt(lim & 0xffff)) | ((b & 0xffffffn) << 16n) | (access << 40n) |
    (BigInt((lim >>> 16) & 0xf) << 48n) | (flags << 52n) | (((b >> 24n) & 0xffn) << 56n);
}

export function readSegment(s: Sregs, name: SegName): Segment {
  const base = s.layout.f[name].off;
  const f = KVM_SEGMENT.f;
  const g = (k: keyof typeof f) => getField(s.dv, base, f[k]);
  return {
    base: g("base"),
    limit: g("limit"),
    selector: g("selector"),
    type: g("type"),
    present: g("present"),
    dpl: g("dpl"),
    db: g("db"),
    s: g("s"),
    l: g("l"),
    g: g("g"),
    avl: g("avl"),
    unusable: g("unusable"),
  };
}

/**
 * True when the registers are exactly the x86 INIT state: rip 0xfff0 under cs selector
 * 0xf000, base 0xffff0000; rflags 2; CR0 with only ET set besides CD and NW, which INIT
 * leaves as they were (0x60000010 after power-on, 0x10 after INIT of a guest that had
 * enabled its caches). KVM on AMD SVM puts a vCPU in this state itself when the guest
 * shuts down (triple fault): the VMCB is undefined after a shutdown intercept, so KVM
 * INITs the vCPU before it reports KVM_EXIT_SHUTDOWN, and the state at the fault is gone.
 * A guest does not fault in exactly this state: it is where a CPU starts, before its
 * first instruction.
 */
export function isInitState(r: Regs, s: Sregs): boolean {
  const cs = readSegment(s, "cs");
  const cr0 = s.get64("cr0") & ~(CR0_CD | CR0_NW);
  return r.get64("rip") === 0xfff0n && r.get64("rflags") === 2n && cs.selector === 0xf000 &&
    cs.base === 0xffff_0000 && cr0 === BigInt(CR0_ET);
}

export function writeSegment(s: Sregs, name: SegName, seg: Segment): void {
  const base = s.layout.f[name].off;
  const f = KVM_SEGMENT.f;
  for (const k of Object.keys(f) as (keyof typeof f)[]) {
    setField(s.dv, base, f[k], (seg as unknown as Record<string, number>)[k] ?? 0);
  }
}

export function writeDtable(s: Sregs, name: "gdt" | "idt", base: number, limit: number): void {
  const o = s.layout.f[name].off;
  setField(s.dv, o, KVM_DTABLE.f.base, base);
  setField(s.dv, o, KVM_DTABLE.f.limit, limit);
}

export class Vcpu {
  /** View of the shared kvm_run page. */
  readonly run: DataView;
  readonly runBytes: Uint8Array<ArrayBuffer>;

  constructor(
    readonly index: number,
    readonly fd: number,
    readonly runAddr: bigint,
    readonly runSize: number,
  ) {
    this.runBytes = host.hostBytes(runAddr, runSize);
    this.run = new DataView(this.runBytes.buffer);
  }

  #get<F extends string>(layout: Layout<F>, req: number, what: string): Struct<F> {
    const s = new Struct(layout);
    host.ioctlBuf(this.fd, req, s.bytes, what);
    return s;
  }

  getRegs(): Regs {
    return this.#get(KVM_REGS, KVM_GET_REGS, "KVM_GET_REGS");
  }
  setRegs(r: Regs): void {
    host.ioctlBuf(this.fd, KVM_SET_REGS, r.bytes, "KVM_SET_REGS");
  }
  getSregs(): Sregs {
    return this.#get(KVM_SREGS, KVM_GET_SREGS, "KVM_GET_SREGS");
  }
  setSregs(s: Sregs): void {
    host.ioctlBuf(this.fd, KVM_SET_SREGS, s.bytes, "KVM_SET_SREGS");
  }
  getMpState(): number {
    return this.#get(KVM_MP_STATE, KVM_GET_MP_STATE, "KVM_GET_MP_STATE").get("mp_state");
  }
  setMpState(state: number): void {
    const s = new Struct(KVM_MP_STATE).set("mp_state", state);
    host.ioctlBuf(this.fd, KVM_SET_MP_STATE, s.bytes, "KVM_SET_MP_STATE");
  }
  /** `buf` is a kvm_cpuid2 header followed by its entries. */
  setCpuid(buf: Uint8Array<ArrayBuffer>): void {
    host.ioctlBuf(this.fd, KVM_SET_CPUID2, buf, "KVM_SET_CPUID2");
  }

  /** Sets general registers: every register not named is zero; rflags bit 1 always set. */
  setGeneral(values: Partial<Record<RegName, number | bigint>>): void {
    const r = new Struct(KVM_REGS);
    r.set("rflags", 2);
    for (const [k, v] of Object.entries(values)) r.set(k as RegName, v!);
    this.setRegs(r);
  }

  /** 32-bit protected mode, paging off, flat CS/DS/ES/FS/GS/SS (base 0, limit 4 GiB). */
  enterProtectedMode(gdtAddr: number | null, mem: GuestMemory | null): void {
    const s = this.getSregs();
    if (gdtAddr !== null && mem !== null) {
      writeGdt(mem, gdtAddr, FLAT_CODE32);
      writeDtable(s, "gdt", gdtAddr, 4 * 8 - 1);
    }
    writeSegment(s, "cs", FLAT_CODE32);
    for (const n of ["ds", "es", "fs", "gs", "ss"] as const) writeSegment(s, n, FLAT_DATA);
    // The PVH ABI (and a flat 32-bit entry) wants CR0 with PE set and every other writable
    // bit clear: the reset value's CD and NW (caches disabled) must not survive. ET is
    // hard-wired to 1 on every CPU KVM runs on.
    s.set("cr0", PROTECTED_MODE_CR0);
    s.set("cr4", 0);
    s.set("efer", 0);
    this.setSregs(s);
  }

  /** Real mode at segment 0: CS base 0, so `entry` must be below 64 KiB. */
  enterRealMode(): void {
    const s = this.getSregs();
    for (const n of ["cs", "ds", "es", "fs", "gs", "ss"] as const) {
      const seg = readSegment(s, n);
      writeSegment(s, n, { ...seg, base: 0, selector: 0 });
    }
    s.set("cr0", s.get("cr0") & ~CR0_PE & ~CR0_PG);
    this.setSregs(s);
  }
  // 64-bit long mode lives in runtime/boot/long_mode.ts (pure tables + one sregs write).
}

/** GDT: null, null, code (0x10), data (0x18). */
function writeGdt(mem: GuestMemory, at: number, code: Segment): void {
  mem.writeU64(at, 0n);
  mem.writeU64(at + 8, 0n);
  mem.writeU64(at + 16, descriptor(code));
  mem.writeU64(at + 24, descriptor(FLAT_DATA));
}

// ── kvm_run accessors used outside the hot loop ──────────────────────────────────────
export function runField(v: Vcpu, name: keyof typeof KVM_RUN_STRUCT.f, index = 0): number {
  return getField(v.run, 0, KVM_RUN_STRUCT.f[name], index);
}

// ── CPUID ────────────────────────────────────────────────────────────────────────────
export const CPUID_ENTRY_SIZE = KVM_CPUID_ENTRY2.size;
export const CPUID_HEADER = KVM_CPUID2.size;
