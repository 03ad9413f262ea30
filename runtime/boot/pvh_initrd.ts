/**
 * The initrd of a PVH boot: module 0 of `hvm_start_info` (an `hvm_modlist_entry` with
 * its address and size), which Linux's PVH entry turns into boot_params' ramdisk fields.
 * It goes as high as it fits in RAM below 4 GiB, clear of the ELF's segments; the
 * one-entry module list sits in the boot-info page right after hvm_start_info.
 */
import { RuntimeError } from "../errors.ts";
import { type ElfSegment, PT_LOAD } from "./elf.ts";
import { type BootContext, requireRam } from "./mod.ts";
import { placeHigh } from "./placement.ts";

/** xen/include/public/arch-x86/hvm/start_info.h: paddr, size, cmdline_paddr, reserved. */
export const HVM_MODLIST_ENTRY_SIZE = 32;
/** hvm_start_info is 56 bytes; the list follows it, 8-byte aligned. */
export const MODLIST_OFFSET = 64;

export interface PvhModules {
  count: number;
  listAddr: number;
}

/** Loads `boot.initrd` (if any) and its module list; returns the start-info fields. */
export function loadPvhInitrd(ctx: BootContext, segments: readonly ElfSegment[]): PvhModules {
  const { plan, memory } = ctx;
  const b = plan.boot;
  if (b.initrd === null) return { count: 0, listAddr: 0 };
  const initrd = ctx.readPayload(b.initrd, "initrd");
  const avoid = segments.filter((s) => s.type === PT_LOAD && s.memsz > 0)
    .map((s) => ({ base: s.paddr, end: s.paddr + s.memsz }));
  const at = placeHigh(plan, initrd.length, 2 ** 32, avoid);
  if (at < 0) {
    throw new RuntimeError(
      "E1015",
      `the initrd (${initrd.length} bytes) does not fit in guest RAM below 4 GiB beside the kernel`,
      "give the machine more `memory` below the PCI hole, or use a smaller initrd",
    );
  }
  requireRam(memory, at, initrd.length, "initrd");
  memory.write(at, initrd);

  const L = b.layout;
  const listAddr = L.info_addr + MODLIST_OFFSET;
  const listEnd = listAddr + HVM_MODLIST_ENTRY_SIZE;
  for (const other of [L.cmdline_addr, L.memmap_addr, L.gdt_addr, L.page_tables_addr]) {
    if (other >= L.info_addr && other < listEnd) {
      throw new RuntimeError(
        "E1006",
        `the PVH module list at 0x${listAddr.toString(16)} would overlap boot data at 0x${
          other.toString(16)
        }`,
        "leave at least 96 bytes after boot.layout.info_addr",
      );
    }
  }
  const entry = new Uint8Array(HVM_MODLIST_ENTRY_SIZE);
  const dv = new DataView(entry.buffer);
  dv.setBigUint64(0, BigInt(at), true);
  dv.setBigUint64(8, BigInt(initrd.length), true);
  requireRam(memory, listAddr, entry.length, "PVH module list");
  memory.write(listAddr, entry);
  return { count: 1, listAddr };
}
