/**
 * What a 64-bit entry needs (the Linux 64-bit boot protocol): identity-mapped page tables
 * covering the first 4 GiB, a GDT with a flat 64-bit code segment at __BOOT_CS (0x10)
 * and a flat data segment at __BOOT_DS (0x18), and the control registers of long mode
 * (CR0.PE|PG, CR4.PAE, EFER.LME|LMA, CR3 at the PML4).
 *
 * The tables and the register values are pure (tested without KVM); `enterLongMode`
 * writes them into guest memory and loads them into the vCPU.
 *
 * Control registers are 64-bit values: they are computed as bigints, because JavaScript's
 * `|` on numbers is a signed 32-bit operation and would turn CR0 with PG (bit 31) set into
 * a negative number (KVM rejects the sign-extended value with EINVAL).
 */
import type { GuestMemory } from "../memory/mod.ts";
import {
  FLAT_CODE64,
  FLAT_DATA,
  type Sregs,
  type Vcpu,
  writeDtable,
  writeSegment,
} from "../kvm/vcpu.ts";

export const PAGE = 4096;
/** PML4 + PDPT + four page directories of 2 MiB pages. */
export const PAGE_TABLE_BYTES = 6 * PAGE;
export const GDT_BYTES = 4 * 8;
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;

export const CR0_PE = 1n;
export const CR0_ET = 1n << 4n;
export const CR0_NE = 1n << 5n;
export const CR0_NW = 1n << 29n;
export const CR0_CD = 1n << 30n;
export const CR0_PG = 1n << 31n;
export const CR4_PAE = 1n << 5n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;

const PRESENT_RW = 0x3n;
const PAGE_SIZE_2M = 0x80n;

/**
 * Page tables at `at` (4 KiB aligned) mapping virtual = physical for 0..4 GiB with 2 MiB
 * pages: PML4[0] → PDPT, PDPT[0..3] → PD0..PD3, each PD with 512 entries of 2 MiB.
 */
export function identityPageTables(at: number): Uint8Array {
  if (at % PAGE !== 0) throw new RangeError("page tables must be 4 KiB aligned");
  const t = new Uint8Array(PAGE_TABLE_BYTES);
  const dv = new DataView(t.buffer);
  const base = BigInt(at);
  dv.setBigUint64(0, (base + 0x1000n) | PRESENT_RW, true);
  for (let i = 0; i < 4; i++) {
    dv.setBigUint64(PAGE + i * 8, (base + BigInt(0x2000 + i * 0x1000)) | PRESENT_RW, true);
    for (let j = 0; j < 512; j++) {
      const phys = BigInt(i) * 0x4000_0000n + BigInt(j) * 0x20_0000n;
      dv.setBigUint64(2 * PAGE + i * PAGE + j * 8, phys | PRESENT_RW | PAGE_SIZE_2M, true);
    }
  }
  return t;
}

/** Flat code (L=1, execute/read) at 0x10 and flat data (read/write) at 0x18. */
export const GDT_CODE64 = 0x00af_9b00_0000_ffffn;
export const GDT_DATA = 0x00cf_9300_0000_ffffn;

export function longModeGdt(): Uint8Array {
  const g = new Uint8Array(GDT_BYTES);
  const dv = new DataView(g.buffer);
  dv.setBigUint64(BOOT_CS, GDT_CODE64, true);
  dv.setBigUint64(BOOT_DS, GDT_DATA, true);
  return g;
}

export interface ControlRegs {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

/**
 * Long-mode control registers, keeping other bits the vCPU already had, except that
 * caching is enabled (CD and NW cleared, as firmware leaves it) instead of the reset state.
 */
export function longModeControlRegs(current: ControlRegs, pml4: number): ControlRegs {
  return {
    cr0: (current.cr0 & ~(CR0_CD | CR0_NW)) | CR0_PE | CR0_ET | CR0_NE | CR0_PG,
    cr3: BigInt(pml4),
    cr4: current.cr4 | CR4_PAE,
    efer: current.efer | EFER_LME | EFER_LMA,
  };
}

/** Sets segments, GDT and control registers of 64-bit mode in an sregs structure. */
export function applyLongMode(s: Sregs, gdtAddr: number, pml4: number): void {
  const cr = longModeControlRegs(
    { cr0: s.get64("cr0"), cr3: s.get64("cr3"), cr4: s.get64("cr4"), efer: s.get64("efer") },
    pml4,
  );
  writeDtable(s, "gdt", gdtAddr, GDT_BYTES - 1);
  writeSegment(s, "cs", { ...FLAT_CODE64, selector: BOOT_CS });
  for (const n of ["ds", "es", "fs", "gs", "ss"] as const) {
    writeSegment(s, n, { ...FLAT_DATA, selector: BOOT_DS });
  }
  s.set("cr0", cr.cr0);
  s.set("cr3", cr.cr3);
  s.set("cr4", cr.cr4);
  s.set("efer", cr.efer);
}

/** Writes the GDT and page tables into guest memory and puts the vCPU in 64-bit mode. */
export function enterLongMode(
  vcpu: Vcpu,
  memory: GuestMemory,
  gdtAddr: number,
  pageTablesAddr: number,
): void {
  memory.write(pageTablesAddr, identityPageTables(pageTablesAddr));
  memory.write(gdtAddr, longModeGdt());
  const s = vcpu.getSregs();
  applyLongMode(s, gdtAddr, pageTablesAddr);
  vcpu.setSregs(s);
}
