/**
 * LZ4 "legacy" frame decompressor: the format the kernel build uses for an
 * lz4-compressed bzImage payload (`lz4 -l`), so vmdesc can take the vmlinux ELF out of a
 * bzImage and enter it through PVH without any host tool.
 *
 * Legacy frame: the magic 0x184C2102, then blocks of [u32 compressed size][LZ4 block],
 * each decompressing to at most 8 MiB. Another magic may start a new frame. The kernel
 * appends the uncompressed size as a final u32; it is used here to size the output and
 * then checked.
 */

export const LZ4_LEGACY_MAGIC = 0x184c2102;

/** Thrown for corrupt input; callers turn it into a coded error. */
export class Lz4Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Lz4Error";
  }
}

class Output {
  buf: Uint8Array;
  len = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(capacity, 4096));
  }
  reserve(n: number) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}

/** Decodes one LZ4 block (no frame) from `src[start, end)`, appending to `out`. */
function decodeBlock(src: Uint8Array, start: number, end: number, out: Output): void {
  let ip = start;
  while (ip < end) {
    const token = src[ip++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) throw new Lz4Error("literal length runs past the block");
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > end) throw new Lz4Error("literals run past the block");
    out.reserve(lit);
    out.buf.set(src.subarray(ip, ip + lit), out.len);
    out.len += lit;
    ip += lit;
    if (ip >= end) break; // the last sequence carries literals only
    if (ip + 2 > end) throw new Lz4Error("match offset runs past the block");
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > out.len) throw new Lz4Error(`bad match offset ${offset}`);
    let mlen = token & 15;
    if (mlen === 15) {
      let b: number;
      do {
        if (ip >= end) throw new Lz4Error("match length runs past the block");
        b = src[ip++];
        mlen += b;
      } while (b === 255);
    }
    mlen += 4;
    out.reserve(mlen);
    const buf = out.buf;
    let op = out.len;
    let from = op - offset;
    if (offset >= mlen) {
      buf.copyWithin(op, from, from + mlen);
      op += mlen;
    } else {
      // Overlapping match: a run that repeats the last `offset` bytes.
      for (let k = 0; k < mlen; k++) buf[op++] = buf[from++];
    }
    out.len = op;
  }
}

const u32 = (b: Uint8Array, o: number) =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

export function isLz4Legacy(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && u32(bytes, 0) === LZ4_LEGACY_MAGIC;
}

/** Decompresses a legacy LZ4 stream (optionally followed by the kernel's u32 size). */
export function decompressLz4Legacy(src: Uint8Array): Uint8Array {
  if (!isLz4Legacy(src)) throw new Lz4Error("not an LZ4 legacy stream (magic 0x184C2102)");
  const trailer = src.length >= 8 ? u32(src, src.length - 4) : 0;
  const out = new Output(trailer > 0 && trailer < 2 ** 30 ? trailer : 8 * 2 ** 20);
  let pos = 4;
  let sawTrailer = false;
  while (pos + 4 <= src.length) {
    const size = u32(src, pos);
    if (size === LZ4_LEGACY_MAGIC) {
      pos += 4;
      continue;
    }
    if (pos + 4 + size > src.length) {
      if (src.length - pos === 4) {
        sawTrailer = true;
        pos += 4;
        break;
      }
      throw new Lz4Error(
        `block of ${size} bytes at offset ${pos} runs past the end (${src.length} bytes)`,
      );
    }
    decodeBlock(src, pos + 4, pos + 4 + size, out);
    pos += 4 + size;
  }
  if (pos !== src.length) throw new Lz4Error(`${src.length - pos} stray bytes at the end`);
  if (sawTrailer && trailer !== out.len) {
    throw new Lz4Error(`decompressed ${out.len} bytes, the stream says ${trailer}`);
  }
  return out.buf.subarray(0, out.len);
}
