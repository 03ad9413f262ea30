/**
 * The bzImage format of the Linux x86 boot protocol (Documentation/arch/x86/boot.rst):
 * reading and checking the setup header, and taking the compressed vmlinux out of the
 * payload so it can be entered through PVH.
 *
 * Layout of the file: the boot sector and the real-mode setup code, `setup_sects + 1`
 * sectors of 512 bytes (0 means 4), with the setup header at 0x1F1; then the
 * protected-mode kernel, `syssize` paragraphs of 16 bytes. From protocol 2.08 the
 * protected-mode part names its compressed payload (`payload_offset`, `payload_length`).
 */
import { RuntimeError } from "../errors.ts";
import { decompressLz4Legacy, isLz4Legacy, Lz4Error } from "./lz4.ts";

/** 2.12 is the first protocol with xloadflags, which says whether a 64-bit entry exists. */
export const MIN_PROTOCOL = 0x020c;

export const LOADFLAGS = {
  LOADED_HIGH: 0x01,
  KASLR_FLAG: 0x02,
  QUIET_FLAG: 0x20,
  KEEP_SEGMENTS: 0x40,
  CAN_USE_HEAP: 0x80,
} as const;

export const XLOADFLAGS = {
  KERNEL_64: 1 << 0,
  CAN_BE_LOADED_ABOVE_4G: 1 << 1,
  EFI_HANDOVER_32: 1 << 2,
  EFI_HANDOVER_64: 1 << 3,
  EFI_KEXEC: 1 << 4,
} as const;

/** Offsets of setup header fields (in the file and, identically, in boot_params). */
export const HDR = {
  setup_sects: 0x1f1,
  syssize: 0x1f4,
  boot_flag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  type_of_loader: 0x210,
  loadflags: 0x211,
  code32_start: 0x214,
  ramdisk_image: 0x218,
  ramdisk_size: 0x21c,
  heap_end_ptr: 0x224,
  cmd_line_ptr: 0x228,
  initrd_addr_max: 0x22c,
  kernel_alignment: 0x230,
  relocatable_kernel: 0x234,
  min_alignment: 0x235,
  xloadflags: 0x236,
  cmdline_size: 0x238,
  payload_offset: 0x248,
  payload_length: 0x24c,
  pref_address: 0x258,
  init_size: 0x260,
} as const;

export interface SetupHeader {
  /** Protocol version, e.g. 0x020f for 2.15. */
  version: number;
  /** Effective number of setup sectors (a 0 in the file means 4). */
  setupSects: number;
  /** Size of the protected-mode kernel in bytes (syssize × 16). */
  syssize: number;
  loadflags: number;
  xloadflags: number;
  relocatable: boolean;
  kernelAlignment: number;
  /** log2 of the minimum alignment a relocatable kernel accepts. */
  minAlignment: number;
  /** Longest command line, without the terminating NUL. */
  cmdlineSize: number;
  /** Highest address the initrd's last byte may occupy. */
  initrdAddrMax: number;
  /** Offset of the compressed payload from the start of the protected-mode kernel. */
  payloadOffset: number;
  payloadLength: number;
  prefAddress: number;
  /** Bytes of memory the kernel needs from its load address until it runs. */
  initSize: number;
  /** End of the setup header: 0x202 + the byte at 0x201 (the jump's target). */
  headerEnd: number;
}

export interface BzImage {
  header: SetupHeader;
  /** The whole file. */
  file: Uint8Array;
  /** Offset in the file of the protected-mode kernel ((setup_sects + 1) × 512). */
  kernelOffset: number;
  /** The protected-mode kernel: what is loaded at the load address. */
  kernel: Uint8Array;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const u64 = (b: Uint8Array, o: number) => u32(b, o) + u32(b, o + 4) * 2 ** 32;

const hex = (n: number) => `0x${n.toString(16)}`;

/** Human words for what a file that is not a bzImage looks like. */
export function describeFile(b: Uint8Array): string {
  const starts = (...sig: number[]) => sig.every((v, i) => b[i] === v);
  if (b.length === 0) return "an empty file";
  if (starts(0x7f, 0x45, 0x4c, 0x46)) {
    return b[4] === 2 ? "a 64-bit ELF file" : b[4] === 1 ? "a 32-bit ELF file" : "an ELF file";
  }
  if (starts(0x1f, 0x8b)) return "a gzip-compressed file";
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "an xz-compressed file";
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "a zstd-compressed file";
  if (starts(0x42, 0x5a, 0x68)) return "a bzip2-compressed file";
  if (isLz4Legacy(b)) return "an lz4-compressed file";
  if (starts(0x21, 0x3c, 0x61, 0x72, 0x63, 0x68, 0x3e)) return "an ar archive (a .deb package?)";
  if (starts(0x30, 0x37, 0x30, 0x37, 0x30)) return "a cpio archive (an initramfs?)";
  if (starts(0x4d, 0x5a)) return "a PE/COFF (EFI) executable without a Linux setup header";
  const head = b.subarray(0, Math.min(b.length, 256));
  if (head.every((c) => c === 9 || c === 10 || c === 13 || (c >= 0x20 && c < 0x7f))) {
    return "a text file";
  }
  const first = [...b.subarray(0, 4)].map((c) => c.toString(16).padStart(2, "0")).join(" ");
  return `a file starting with bytes ${first}`;
}

function hintFor(b: Uint8Array): string {
  if (b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) {
    return "this looks like an ELF (a vmlinux); use `boot pvh` for vmlinux, `boot linux` takes a bzImage (vmlinuz)";
  }
  if (b[0] === 0x21 && b[1] === 0x3c) {
    return "take the kernel out of the package first: `dpkg-deb -x PACKAGE.deb DIR`, then use DIR/boot/vmlinuz-*";
  }
  if (b[0] === 0x1f && b[1] === 0x8b) {
    return "decompress it first (`zcat`), or point `boot linux` at the kernel's bzImage (arch/x86/boot/bzImage or /boot/vmlinuz-*)";
  }
  return "`boot linux` takes an x86 bzImage (arch/x86/boot/bzImage, /boot/vmlinuz-*)";
}

/** True when the bytes carry the bzImage boot flag and "HdrS" magic. */
export function isBzImage(b: Uint8Array): boolean {
  return b.length >= 0x206 && u16(b, HDR.boot_flag) === 0xaa55 &&
    u32(b, HDR.header) === 0x53726448;
}

/**
 * Reads and checks a bzImage. Errors: E1013 not a bzImage, E1014 protocol too old or no
 * 64-bit entry, E1011 truncated. `path` is used in messages only.
 */
export function parseBzImage(file: Uint8Array, path: string): BzImage {
  if (!isBzImage(file)) {
    // A file cut short inside the boot sector may still have started as a bzImage.
    if (file.length < 0x206 && file.length >= 2 && file[0] === 0x4d && file[1] === 0x5a) {
      throw new RuntimeError(
        "E1011",
        `${path} is truncated: ${file.length} bytes, too short to hold a setup header`,
        "the file was cut short; copy the kernel again",
      );
    }
    throw new RuntimeError(
      "E1013",
      `${path} is not a bzImage: it is ${
        describeFile(file)
      } (no 0xAA55 boot flag and "HdrS" header)`,
      hintFor(file),
    );
  }
  if (file.length < HDR.version + 2) {
    throw new RuntimeError(
      "E1011",
      `${path} is truncated: ${file.length} bytes end inside the setup header`,
      "the file was cut short; copy the kernel again",
    );
  }
  const version = u16(file, HDR.version);
  const headerEnd = 0x202 + file[0x201];
  const vtext = `${version >> 8}.${version & 0xff}`;
  if (version < MIN_PROTOCOL) {
    throw new RuntimeError(
      "E1014",
      `${path} uses boot protocol ${vtext}; vmdesc needs 2.12 or later (64-bit entry)`,
      "use a kernel from Linux 3.8 or later",
    );
  }
  if (file.length < Math.max(headerEnd, HDR.init_size + 4)) {
    throw new RuntimeError(
      "E1011",
      `${path} is truncated: ${file.length} bytes end inside the setup header`,
      "the file was cut short; copy the kernel again",
    );
  }
  const rawSects = file[HDR.setup_sects];
  const header: SetupHeader = {
    version,
    setupSects: rawSects === 0 ? 4 : rawSects,
    syssize: u32(file, HDR.syssize) * 16,
    loadflags: file[HDR.loadflags],
    xloadflags: u16(file, HDR.xloadflags),
    relocatable: file[HDR.relocatable_kernel] !== 0,
    kernelAlignment: u32(file, HDR.kernel_alignment),
    minAlignment: file[HDR.min_alignment],
    cmdlineSize: u32(file, HDR.cmdline_size),
    initrdAddrMax: u32(file, HDR.initrd_addr_max),
    payloadOffset: u32(file, HDR.payload_offset),
    payloadLength: u32(file, HDR.payload_length),
    prefAddress: u64(file, HDR.pref_address),
    initSize: u32(file, HDR.init_size),
    headerEnd,
  };
  if (!(header.xloadflags & XLOADFLAGS.KERNEL_64)) {
    throw new RuntimeError(
      "E1014",
      `${path} has no 64-bit entry point (protocol ${vtext}, xloadflags ${
        hex(header.xloadflags)
      }): a 32-bit kernel?`,
      "vmdesc enters Linux in 64-bit mode; build the kernel for x86_64",
    );
  }
  if (!(header.loadflags & LOADFLAGS.LOADED_HIGH)) {
    throw new RuntimeError(
      "E1013",
      `${path} is a zImage (loaded low), not a bzImage`,
      "build the kernel with `make bzImage`",
    );
  }
  const kernelOffset = (header.setupSects + 1) * 512;
  const end = kernelOffset + header.syssize;
  if (file.length < end || header.syssize === 0) {
    throw new RuntimeError(
      "E1011",
      `${path} is truncated: the header promises ${end} bytes, the file has ${file.length}`,
      "the file was cut short; copy the kernel again",
    );
  }
  return { header, file, kernelOffset, kernel: file.subarray(kernelOffset, end) };
}

/** Names the compression of a kernel payload from its magic. */
function compressionOf(p: Uint8Array): string {
  const starts = (...sig: number[]) => sig.every((v, i) => p[i] === v);
  if (isLz4Legacy(p)) return "lz4";
  if (starts(0x1f, 0x8b)) return "gzip";
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz";
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  if (starts(0x42, 0x5a, 0x68)) return "bzip2";
  if (starts(0x5d, 0x00, 0x00)) return "lzma";
  if (starts(0x89, 0x4c, 0x5a, 0x4f)) return "lzo";
  if (starts(0x7f, 0x45, 0x4c, 0x46)) return "none";
  return "unknown";
}

/** gzip through the platform's DecompressionStream (the kernel build appends no trailer). */
async function gunzip(p: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([p.slice()]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Takes the vmlinux ELF out of a bzImage: the payload named by the setup header,
 * decompressed (lz4, the format of Debian's kernels, or gzip). The result is the ELF the
 * kernel's own decompressor would parse, PVH note included.
 */
export async function extractVmlinux(bz: BzImage, path: string): Promise<Uint8Array> {
  const { payloadOffset, payloadLength } = bz.header;
  if (payloadLength === 0 || payloadOffset + payloadLength > bz.kernel.length) {
    throw new RuntimeError(
      "E1011",
      `${path}: the compressed kernel (payload ${
        hex(payloadOffset)
      } + ${payloadLength} bytes) lies outside the file`,
      "the file was cut short; copy the kernel again",
    );
  }
  const payload = bz.kernel.subarray(payloadOffset, payloadOffset + payloadLength);
  const kind = compressionOf(payload);
  let elf: Uint8Array;
  try {
    if (kind === "lz4") elf = decompressLz4Legacy(payload);
    else if (kind === "gzip") elf = await gunzip(payload);
    else if (kind === "none") elf = payload;
    else {
      throw new RuntimeError(
        "E1012",
        `${path}: the kernel inside is ${kind}-compressed; vmdesc can take out lz4 and gzip payloads only`,
        "boot this kernel with `boot linux` (its own decompressor runs), or give `boot pvh` the uncompressed vmlinux",
      );
    }
  } catch (e) {
    if (e instanceof RuntimeError) throw e;
    if (e instanceof Lz4Error || e instanceof TypeError) {
      throw new RuntimeError(
        "E1011",
        `${path}: the compressed kernel inside is corrupt (${e.message})`,
        "the file was damaged; copy the kernel again",
      );
    }
    throw e;
  }
  if (!(elf[0] === 0x7f && elf[1] === 0x45 && elf[2] === 0x4c && elf[3] === 0x46)) {
    throw new RuntimeError(
      "E1012",
      `${path}: the decompressed kernel is ${describeFile(elf)}, not an ELF`,
      "boot this kernel with `boot linux`",
    );
  }
  return elf;
}
