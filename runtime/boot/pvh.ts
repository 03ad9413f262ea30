/**
 * PVH boot (Xen's direct boot ABI, as Linux, QEMU and Firecracker use it): an ELF image with
 * a XEN_ELFNOTE_PHYS32_ENTRY note. PT_LOAD segments go to their physical addresses; an
 * `hvm_start_info` (version 1, with the e820 map as hvm_memmap_table entries, the command
 * line and the RSDP when the Plan has ACPI) goes to `boot.layout.info_addr`; the vCPU starts
 * at the note's entry in 32-bit protected mode, paging off, flat CS/DS, EBX = start info.
 */
import type { E820Type } from "../../plan/types.ts";
import { layout, Struct } from "../kvm/layout.ts";
import { RuntimeError } from "../errors.ts";
import { parseElf, PT_LOAD } from "./elf.ts";
import { type BootContext, requireRam } from "./mod.ts";
import { loadAcpi } from "./acpi/load.ts";
import { loadPvhInitrd } from "./pvh_initrd.ts";

export const HVM_START_MAGIC = 0x336ec578;

/** xen/include/public/arch-x86/hvm/start_info.h */
export const HVM_START_INFO = layout("struct hvm_start_info", 56, {
  magic: [0, 4],
  version: [4, 4],
  flags: [8, 4],
  nr_modules: [12, 4],
  modlist_paddr: [16, 8],
  cmdline_paddr: [24, 8],
  rsdp_paddr: [32, 8],
  memmap_paddr: [40, 8],
  memmap_entries: [48, 4],
});

export const HVM_MEMMAP_TABLE_ENTRY = layout("struct hvm_memmap_table_entry", 24, {
  addr: [0, 8],
  size: [8, 8],
  type: [16, 4],
});

export const E820_TYPES: Record<E820Type, number> = { ram: 1, reserved: 2, acpi: 3, nvs: 4 };

export function bootPvh(ctx: BootContext): void {
  const { plan, memory } = ctx;
  const b = plan.boot;
  const bytes = ctx.readPayload(b.path);
  const elf = parseElf(bytes, ctx.resolve(b.path));
  if (elf.pvhEntry === null) {
    throw new RuntimeError(
      "E1012",
      `boot payload ${ctx.resolve(b.path)} has no PVH entry note (Xen ELF note type 18)`,
      "build with a PVH note, or use `boot flat`/`boot linux`",
    );
  }
  for (const seg of elf.segments) {
    if (seg.type !== PT_LOAD || seg.memsz === 0) continue;
    requireRam(memory, seg.paddr, seg.memsz, `ELF segment of ${b.path}`);
    memory.write(seg.paddr, bytes.subarray(seg.offset, seg.offset + seg.filesz));
    if (seg.memsz > seg.filesz) memory.fill(seg.paddr + seg.filesz, seg.memsz - seg.filesz, 0);
  }

  const L = b.layout;
  const cmd = new TextEncoder().encode(b.cmdline);
  if (cmd.length + 1 > L.cmdline_max) {
    throw new RuntimeError(
      "E1006",
      `command line is ${cmd.length} bytes, the limit is ${L.cmdline_max - 1}`,
      "shorten `cmdline`",
    );
  }
  requireRam(memory, L.cmdline_addr, cmd.length + 1, "command line");
  memory.write(L.cmdline_addr, cmd);
  memory.write(L.cmdline_addr + cmd.length, new Uint8Array(1));

  const table = new Uint8Array(plan.e820.length * HVM_MEMMAP_TABLE_ENTRY.size);
  const tdv = new DataView(table.buffer);
  const E = HVM_MEMMAP_TABLE_ENTRY.f;
  plan.e820.forEach((e, i) => {
    const base = i * HVM_MEMMAP_TABLE_ENTRY.size;
    tdv.setBigUint64(base + E.addr.off, BigInt(e.addr), true);
    tdv.setBigUint64(base + E.size.off, BigInt(e.size), true);
    tdv.setUint32(base + E.type.off, E820_TYPES[e.type], true);
  });
  requireRam(memory, L.memmap_addr, table.length, "PVH memory map");
  memory.write(L.memmap_addr, table);

  const rsdp = loadAcpi(ctx);

  // The initrd, if any, as module 0 (./pvh_initrd.ts).
  const modules = loadPvhInitrd(ctx, elf.segments);
  const info = new Struct(HVM_START_INFO)
    .set("magic", HVM_START_MAGIC)
    .set("version", 1)
    .set("nr_modules", modules.count)
    .set("modlist_paddr", modules.listAddr)
    .set("cmdline_paddr", L.cmdline_addr)
    .set("rsdp_paddr", rsdp)
    .set("memmap_paddr", L.memmap_addr)
    .set("memmap_entries", plan.e820.length);
  requireRam(memory, L.info_addr, HVM_START_INFO.size, "hvm_start_info");
  memory.write(L.info_addr, info.bytes);

  ctx.vcpu.enterProtectedMode(L.gdt_addr, memory);
  ctx.vcpu.setGeneral({ rip: elf.pvhEntry, rbx: L.info_addr, rsp: L.stack_top });
}
