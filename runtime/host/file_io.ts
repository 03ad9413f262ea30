/**
 * File I/O for device backends (a disk image, the host's entropy): pread/pwrite straight
 * into and out of guest RAM (the buffers are views of the guest's memslots, so no copy),
 * fdatasync, fallocate, getrandom, flock and lseek.
 *
 * A libc handle of its own, opened on first use: binding each FFI symbol costs start-up
 * time (runtime/host/libc.ts), and only machines with a virtio device need these. Errors
 * come back as negative errno values (`-EIO`), not exceptions: a backend turns them into a
 * status for the guest, and the VMM carries on.
 */
import { errno } from "./libc.ts";

const SYMBOLS = {
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  fdatasync: { parameters: ["i32"], result: "i32" },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  getrandom: { parameters: ["buffer", "usize", "u32"], result: "isize" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;

function sym(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  if (lib === null) lib = Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

export const EINTR = 4;
export const EIO = 5;
export const EAGAIN = 11;
export const EOPNOTSUPP = 95;
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
const SEEK_END = 2;

const num = (v: number | bigint): number => typeof v === "bigint" ? Number(v) : v;

/**
 * Reads all of `buf` from `fd` at `offset` (retrying short reads and EINTR). Returns the
 * bytes read (fewer at end of file) or -errno.
 */
export function preadFull(fd: number, buf: Uint8Array, offset: number): number {
  let done = 0;
  while (done < buf.length) {
    const r = num(
      sym().pread(fd, buf.subarray(done), BigInt(buf.length - done), BigInt(offset + done)),
    );
    if (r < 0) {
      const e = errno();
      if (e === EINTR) continue;
      return -e;
    }
    if (r === 0) break;
    done += r;
  }
  return done;
}

/** Writes all of `buf` at `offset`; returns the bytes written or -errno. */
export function pwriteFull(fd: number, buf: Uint8Array, offset: number): number {
  let done = 0;
  while (done < buf.length) {
    const r = num(
      sym().pwrite(fd, buf.subarray(done), BigInt(buf.length - done), BigInt(offset + done)),
    );
    if (r < 0) {
      const e = errno();
      if (e === EINTR) continue;
      return -e;
    }
    if (r === 0) return -EIO;
    done += r;
  }
  return done;
}

/** 0 or -errno. */
export function fdatasync(fd: number): number {
  for (;;) {
    if (sym().fdatasync(fd) === 0) return 0;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

/** 0 or -errno (-EOPNOTSUPP where the file system cannot). */
export function fallocate(fd: number, mode: number, offset: number, len: number): number {
  for (;;) {
    if (sym().fallocate(fd, mode, BigInt(offset), BigInt(len)) === 0) return 0;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

/** Fills `buf` from the kernel's CSPRNG (getrandom(2), blocking only before it is seeded). */
export function getrandomFull(buf: Uint8Array): number {
  let done = 0;
  while (done < buf.length) {
    const r = num(sym().getrandom(buf.subarray(done), BigInt(buf.length - done), 0));
    if (r < 0) {
      const e = errno();
      if (e === EINTR) continue;
      return -e;
    }
    done += r;
  }
  return done;
}

/** flock(2); 0 or -errno (-EAGAIN/-EWOULDBLOCK when held elsewhere with LOCK_NB). */
export function flock(fd: number, op: number): number {
  return sym().flock(fd, op) === 0 ? 0 : -errno();
}

/** The size of what `fd` refers to (a regular file or a block device), or -errno. */
export function sizeOf(fd: number): number {
  const r = num(sym().lseek(fd, 0n, SEEK_END));
  return r < 0 ? -errno() : r;
}
