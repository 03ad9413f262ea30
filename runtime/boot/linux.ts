/**
 * The Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit Boot
 * Protocol"): the protected-mode part of a bzImage is loaded at its preferred address,
 * a zero page (`struct boot_params`) carries a copy of the setup header plus what the
 * loader filled in (command line, initrd, e820 map, RSDP), and the vCPU enters at load
 * address + 0x200 in 64-bit mode with identity-mapped page tables, a GDT with __BOOT_CS
 * 0x10 and __BOOT_DS 0x18, interrupts off and RSI pointing at the zero page.
 *
 * Placement is pure (`placeLinux`, `buildZeroPage`) so it is tested without KVM;
 * `bootLinux` only writes the result into guest memory and sets registers.
 */
import type { Plan } from "../../plan/types.ts";
import { RuntimeError } from "../errors.ts";
import { loadAcpi } from "./acpi/load.ts";
import { type BzImage, HDR, LOADFLAGS, parseBzImage, type SetupHeader } from "./bzimage.ts";
import { type BootContext, requireRam } from "./mod.ts";
import { enterLongMode, GDT_BYTES, PAGE_TABLE_BYTES } from "./long_mode.ts";
import { placeHigh, usableRam } from "./placement.ts";

/** Offsets in boot_params (Documentation/arch/x86/zero-page.rst) outside the setup header. */
export const ZP = {
  acpi_rsdp_addr: 0x070,
  ext_ramdisk_image: 0x0c0,
  ext_ramdisk_size: 0x0c4,
  ext_cmd_line_ptr: 0x0c8,
  e820_entries: 0x1e8,
  sentinel: 0x1ef,
  e820_table: 0x2d0,
} as const;

export const ZERO_PAGE_SIZE = 4096;
export const E820_MAX_ENTRIES_ZEROPAGE = 128;
/** The 64-bit entry point is 0x200 bytes into the protected-mode kernel. */
export const ENTRY_64_OFFSET = 0x200;
/** Loaders that have no assigned id use 0xFF. */
export const TYPE_OF_LOADER_UNDEFINED = 0xff;

const E820_CODES = { ram: 1, reserved: 2, acpi: 3, nvs: 4 } as const;
const MiB = 0x10_0000;
const FOUR_GiB = 2 ** 32;
const PAGE = 4096;

const hex = (n: number) => `0x${n.toString(16)}`;
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

export interface LinuxPlacement {
  /** Where the protected-mode kernel is loaded. */
  loadAddr: number;
  /** Bytes reserved from loadAddr for the kernel to decompress and run (init_size). */
  loadSize: number;
  entry: number;
  initrd: { addr: number; size: number } | null;
}

/**
 * Picks the load address: the kernel's preferred address when [pref, pref + init_size)
 * is usable RAM below 4 GiB; otherwise, for a relocatable kernel, the lowest
 * kernel_alignment-aligned address at or above 1 MiB where it fits.
 */
export function placeKernel(plan: Plan, header: SetupHeader, kernelLen: number): {
  loadAddr: number;
  loadSize: number;
} {
  const loadSize = alignUp(Math.max(header.initSize, kernelLen), PAGE);
  const ram = usableRam(plan.e820);
  const fits = (at: number) =>
    at + loadSize <= FOUR_GiB && ram.some((r) => at >= r.base && at + loadSize <= r.end);
  const pref = header.prefAddress || MiB;
  if (fits(pref)) return { loadAddr: pref, loadSize };
  if (header.relocatable) {
    const align = Math.max(header.kernelAlignment, 2 ** header.minAlignment, PAGE);
    for (const r of ram) {
      const at = alignUp(Math.max(r.base, MiB), align);
      if (fits(at)) return { loadAddr: at, loadSize };
    }
  }
  throw new RuntimeError(
    "E1016",
    `the kernel needs ${loadSize >> 20} MiB of RAM from ${hex(pref)}${
      header.relocatable ? " (or any aligned address above 1 MiB)" : ""
    }, and the machine's RAM below 4 GiB has no such range`,
    "give the machine more `memory`",
  );
}

/**
 * Places an initrd as high as the kernel allows (initrd_addr_max, and below 4 GiB, so in
 * the RAM below the PCI hole), page aligned, clear of the kernel's [load, load+init_size).
 */
export function placeInitrd(
  plan: Plan,
  header: Pick<SetupHeader, "initrdAddrMax">,
  size: number,
  kernel: { loadAddr: number; loadSize: number },
): number {
  const limit = Math.min(header.initrdAddrMax + 1, FOUR_GiB);
  const at = placeHigh(plan, size, limit, [
    { base: kernel.loadAddr, end: kernel.loadAddr + kernel.loadSize },
  ]);
  if (at < 0) {
    throw new RuntimeError(
      "E1015",
      `the initrd (${size} bytes) does not fit in guest RAM below ${hex(limit)} beside the kernel`,
      "give the machine more `memory` below the PCI hole, or use a smaller initrd",
    );
  }
  return at;
}

export function placeLinux(
  plan: Plan,
  bz: BzImage,
  initrdSize: number | null,
): LinuxPlacement {
  const k = placeKernel(plan, bz.header, bz.kernel.length);
  return {
    ...k,
    entry: k.loadAddr + ENTRY_64_OFFSET,
    initrd: initrdSize === null
      ? null
      : { addr: placeInitrd(plan, bz.header, initrdSize, k), size: initrdSize },
  };
}

/** The command line as the kernel will read it, checked against both limits. */
export function encodeCmdline(plan: Plan, header: SetupHeader): Uint8Array {
  const cmd = new TextEncoder().encode(plan.boot.cmdline);
  const max = Math.min(plan.boot.layout.cmdline_max - 1, header.cmdlineSize);
  if (cmd.length > max) {
    const who = max === header.cmdlineSize ? "the kernel accepts" : "the Plan reserves";
    throw new RuntimeError(
      "E1006",
      `the command line is ${cmd.length} bytes; ${who} at most ${max}`,
      "shorten `cmdline`",
    );
  }
  const out = new Uint8Array(cmd.length + 1);
  out.set(cmd);
  return out;
}

/**
 * boot_params: zeroed, the setup header copied from the image (0x1F1 to its end), then
 * the fields a boot loader must fill in.
 */
export function buildZeroPage(
  plan: Plan,
  bz: BzImage,
  placement: LinuxPlacement,
  rsdpAddr: number,
): Uint8Array {
  const zp = new Uint8Array(ZERO_PAGE_SIZE);
  const dv = new DataView(zp.buffer);
  zp.set(bz.file.subarray(HDR.setup_sects, bz.header.headerEnd), HDR.setup_sects);
  zp[HDR.type_of_loader] = TYPE_OF_LOADER_UNDEFINED;
  zp[HDR.loadflags] |= LOADFLAGS.LOADED_HIGH | LOADFLAGS.CAN_USE_HEAP;
  // End of the setup heap, relative to the real-mode code minus 0x200 (the conventional
  // value: real-mode code at 0x0, heap up to 0xFE00). The 64-bit entry does not use it.
  dv.setUint16(HDR.heap_end_ptr, 0xfe00, true);
  dv.setUint32(HDR.code32_start, placement.loadAddr, true);
  const cmdline = plan.boot.layout.cmdline_addr;
  dv.setUint32(HDR.cmd_line_ptr, cmdline % FOUR_GiB, true);
  dv.setUint32(ZP.ext_cmd_line_ptr, Math.floor(cmdline / FOUR_GiB), true);
  if (placement.initrd) {
    const { addr, size } = placement.initrd;
    dv.setUint32(HDR.ramdisk_image, addr % FOUR_GiB, true);
    dv.setUint32(HDR.ramdisk_size, size % FOUR_GiB, true);
    dv.setUint32(ZP.ext_ramdisk_image, Math.floor(addr / FOUR_GiB), true);
    dv.setUint32(ZP.ext_ramdisk_size, Math.floor(size / FOUR_GiB), true);
  } else {
    dv.setUint32(HDR.ramdisk_image, 0, true);
    dv.setUint32(HDR.ramdisk_size, 0, true);
  }
  dv.setBigUint64(ZP.acpi_rsdp_addr, BigInt(rsdpAddr), true);
  if (plan.e820.length > E820_MAX_ENTRIES_ZEROPAGE) {
    throw new RuntimeError(
      "E1006",
      `the e820 map has ${plan.e820.length} entries; the zero page holds ${E820_MAX_ENTRIES_ZEROPAGE}`,
      "describe fewer memory ranges",
    );
  }
  plan.e820.forEach((e, i) => {
    const o = ZP.e820_table + 20 * i;
    dv.setBigUint64(o, BigInt(e.addr), true);
    dv.setBigUint64(o + 8, BigInt(e.size), true);
    dv.setUint32(o + 16, E820_CODES[e.type], true);
  });
  zp[ZP.e820_entries] = plan.e820.length;
  return zp;
}

/** The `linux` boot loader (registered in ./mod.ts). */
export function bootLinux(ctx: BootContext): void {
  const { plan, memory, vcpu } = ctx;
  const b = plan.boot;
  const L = b.layout;
  const path = ctx.resolve(b.path);
  const bz = parseBzImage(ctx.readPayload(b.path, "kernel"), path);
  const initrd = b.initrd === null ? null : ctx.readPayload(b.initrd, "initrd");
  const placement = placeLinux(plan, bz, initrd?.length ?? null);

  requireRam(memory, placement.loadAddr, placement.loadSize, "kernel");
  memory.write(placement.loadAddr, bz.kernel);
  // The kernel zeroes its own BSS; the rest of init_size is scratch it overwrites.
  if (initrd && placement.initrd) memory.write(placement.initrd.addr, initrd);

  const cmdline = encodeCmdline(plan, bz.header);
  requireRam(memory, L.cmdline_addr, cmdline.length, "command line");
  memory.write(L.cmdline_addr, cmdline);

  const rsdp = loadAcpi(ctx);
  const zp = buildZeroPage(plan, bz, placement, rsdp);
  requireRam(memory, L.info_addr, zp.length, "zero page");
  memory.write(L.info_addr, zp);

  requireRam(memory, L.gdt_addr, GDT_BYTES, "GDT");
  requireRam(memory, L.page_tables_addr, PAGE_TABLE_BYTES, "page tables");
  enterLongMode(vcpu, memory, L.gdt_addr, L.page_tables_addr);
  vcpu.setGeneral({ rip: placement.entry, rsi: L.info_addr, rsp: L.stack_top });
}
