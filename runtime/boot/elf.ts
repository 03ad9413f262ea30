/**
 * Just enough ELF to boot: the header, the program headers (PT_LOAD to place, PT_NOTE to
 * find the PVH entry), for ELF32 and ELF64 little-endian x86 images (a Linux vmlinux is
 * ELF64; the test guests are ELF32).
 */
import { RuntimeError } from "../errors.ts";

export const PT_LOAD = 1;
export const PT_NOTE = 4;
/** Xen ELF note type: 32-bit physical entry point of a PVH kernel. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

export interface ElfSegment {
  type: number;
  offset: number;
  paddr: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfImage {
  class: 32 | 64;
  entry: number;
  segments: ElfSegment[];
  /** The PVH entry from the Xen note, or null. */
  pvhEntry: number | null;
}

const NOT_PVH_HINT = "build with a PVH note, or use `boot flat`/`boot linux`";

function truncated(path: string, what: string): RuntimeError {
  return new RuntimeError(
    "E1011",
    `boot payload ${path} is truncated: ${what} lies past the end of the file`,
    "rebuild the payload; the file was cut short",
  );
}

export function parseElf(bytes: Uint8Array, path: string): ElfImage {
  if (
    bytes.length < 16 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c ||
    bytes[3] !== 0x46
  ) {
    throw new RuntimeError("E1012", `boot payload ${path} is not an ELF file`, NOT_PVH_HINT);
  }
  const cls = bytes[4];
  if ((cls !== 1 && cls !== 2) || bytes[5] !== 1) {
    throw new RuntimeError(
      "E1012",
      `boot payload ${path} is not a little-endian ELF32/ELF64 file`,
      NOT_PVH_HINT,
    );
  }
  const is64 = cls === 2;
  const ehsize = is64 ? 64 : 52;
  if (bytes.length < ehsize) throw truncated(path, "the ELF header");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number) => Number(dv.getBigUint64(o, true));
  const word = is64 ? u64 : u32;
  const machine = u16(18);
  if (machine !== 3 && machine !== 62) {
    throw new RuntimeError(
      "E1012",
      `boot payload ${path} is an ELF for machine ${machine}, not x86`,
      NOT_PVH_HINT,
    );
  }
  const entry = word(24);
  const phoff = is64 ? u64(32) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  if (phoff + phnum * phentsize > bytes.length) throw truncated(path, "the program header table");
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const seg: ElfSegment = is64
      ? {
        type: u32(o),
        offset: u64(o + 8),
        vaddr: u64(o + 16),
        paddr: u64(o + 24),
        filesz: u64(o + 32),
        memsz: u64(o + 40),
      }
      : {
        type: u32(o),
        offset: u32(o + 4),
        vaddr: u32(o + 8),
        paddr: u32(o + 12),
        filesz: u32(o + 16),
        memsz: u32(o + 20),
      };
    if ((seg.type === PT_LOAD || seg.type === PT_NOTE) && seg.offset + seg.filesz > bytes.length) {
      throw truncated(
        path,
        `segment ${i} (offset 0x${seg.offset.toString(16)}, 0x${seg.filesz.toString(16)} bytes)`,
      );
    }
    segments.push(seg);
  }
  let pvhEntry: number | null = null;
  for (const seg of segments) {
    if (seg.type !== PT_NOTE) continue;
    let o = seg.offset;
    const end = seg.offset + seg.filesz;
    while (o + 12 <= end) {
      const namesz = u32(o);
      const descsz = u32(o + 4);
      const type = u32(o + 8);
      const nameOff = o + 12;
      const descOff = nameOff + align4(namesz);
      if (descOff + descsz > end) break;
      const name = new TextDecoder().decode(
        bytes.subarray(nameOff, nameOff + Math.max(0, namesz - 1)),
      );
      if (name === "Xen" && type === XEN_ELFNOTE_PHYS32_ENTRY) {
        pvhEntry = descsz >= 8 ? u64(descOff) : u32(descOff);
      }
      o = descOff + align4(descsz);
    }
  }
  return { class: is64 ? 64 : 32, entry, segments, pvhEntry };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
