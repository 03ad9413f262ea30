/**
 * Crafted bzImages for unit tests: a real setup header with chosen fields, a
 * protected-mode part holding a chosen payload (e.g. an lz4 frame around a tiny ELF).
 */
import { HDR } from "./bzimage.ts";

export interface FakeKernel {
  version?: number;
  setupSects?: number;
  xloadflags?: number;
  loadflags?: number;
  relocatable?: boolean;
  prefAddress?: number;
  initSize?: number;
  kernelAlignment?: number;
  initrdAddrMax?: number;
  cmdlineSize?: number;
  /** The compressed payload inside the protected-mode part. */
  payload?: Uint8Array;
  /** Protected-mode bytes (default: just enough for the payload at 0x400). */
  pmSize?: number;
}

export function fakeBzImage(o: FakeKernel = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const payload = o.payload ?? new Uint8Array(16);
  const payloadOffset = 0x400; // after the entry code at 0x200, as in real images
  const pmSize = o.pmSize ?? Math.ceil((payloadOffset + payload.length + 0x100) / 16) * 16;
  const setupLen = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  const f = new Uint8Array(setupLen + pmSize);
  const dv = new DataView(f.buffer);
  f[HDR.setup_sects] = setupSects;
  dv.setUint32(HDR.syssize, pmSize / 16, true);
  dv.setUint16(HDR.boot_flag, 0xaa55, true);
  f[0x200] = 0xeb; // jmp short
  f[0x201] = 0x6a; // header ends at 0x26c, as in 2.15 kernels
  dv.setUint32(HDR.header, 0x53726448, true);
  dv.setUint16(HDR.version, o.version ?? 0x020f, true);
  f[HDR.loadflags] = o.loadflags ?? 0x01;
  dv.setUint32(HDR.initrd_addr_max, o.initrdAddrMax ?? 0x7fff_ffff, true);
  dv.setUint32(HDR.kernel_alignment, o.kernelAlignment ?? 0x20_0000, true);
  f[HDR.relocatable_kernel] = (o.relocatable ?? true) ? 1 : 0;
  f[HDR.min_alignment] = 21;
  dv.setUint16(HDR.xloadflags, o.xloadflags ?? 0x7f, true);
  dv.setUint32(HDR.cmdline_size, o.cmdlineSize ?? 2047, true);
  dv.setUint32(HDR.payload_offset, payloadOffset, true);
  dv.setUint32(HDR.payload_length, payload.length, true);
  dv.setBigUint64(HDR.pref_address, BigInt(o.prefAddress ?? 0x100_0000), true);
  dv.setUint32(HDR.init_size, o.initSize ?? 0x100_0000, true);
  f.set(payload, setupLen + payloadOffset);
  // Recognisable bytes at the 64-bit entry.
  f[setupLen + 0x200] = 0xf4;
  return f;
}

/** A minimal ELF64 with one PT_NOTE holding a Xen PHYS32_ENTRY note (entry 0x1000000). */
export function tinyPvhElf(withNote = true): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(0x100);
  const dv = new DataView(f.buffer);
  f.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 62, true); // x86-64
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, 0x100_0000n, true);
  dv.setBigUint64(32, 64n, true); // phoff
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, 1, true);
  // PT_NOTE at 0xa0, 24 bytes: namesz 4 "Xen\0", descsz 4, type 18.
  dv.setUint32(64, 4, true);
  dv.setBigUint64(64 + 8, 0xa0n, true);
  dv.setBigUint64(64 + 32, 24n, true);
  dv.setBigUint64(64 + 40, 24n, true);
  dv.setUint32(0xa0, 4, true);
  dv.setUint32(0xa4, 4, true);
  dv.setUint32(0xa8, withNote ? 18 : 6, true);
  f.set([0x58, 0x65, 0x6e, 0], 0xac);
  dv.setUint32(0xb0, 0x100_0000, true);
  return f;
}

/** Wraps bytes in an LZ4 legacy frame of literal-only blocks, with the kernel's size trailer. */
export function lz4Stored(data: Uint8Array): Uint8Array {
  const parts: number[] = [0x02, 0x21, 0x4c, 0x18];
  const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
  // One literal-only sequence: token 0xF0, then the length beyond 15 in 255-steps.
  const block: number[] = [0xf0];
  let rest = data.length - 15;
  while (rest >= 255) {
    block.push(255);
    rest -= 255;
  }
  block.push(rest);
  block.push(...data);
  parts.push(...le32(block.length), ...block, ...le32(data.length));
  return Uint8Array.from(parts);
}
