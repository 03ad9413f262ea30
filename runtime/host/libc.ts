/**
 * The host layer: the few libc calls the runtime needs, through one lazily opened
 * `Deno.dlopen("libc.so.6")` per thread (workers open their own; the handle is per isolate).
 *
 * Every call that can fail goes through a checked wrapper that reads errno right after the
 * call (same thread, nothing in between) and throws a `HostError` carrying the errno name.
 * File descriptors and mappings are plain integers / addresses: they are process-wide, so
 * the main thread can create them and a vCPU worker can use them.
 */

// Each symbol costs ~0.25 ms when the library is opened (Deno builds a call trampoline for
// every one), on the start-up path of every boot: list only what the runtime calls.
const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // ioctl is variadic; x86-64 passes the third argument in a register either way, so
  // fixed-signature aliases cover "pointer argument" and "integer argument". The request
  // is passed as u32: the kernel's ioctl takes `unsigned int cmd`, and a u32 parameter is
  // the cheapest FFI call (measured: ~260 ns vs ~340-400 ns with u64/bigint).
  ioctl_buf: { name: "ioctl", parameters: ["i32", "u32", "buffer"], result: "i32" },
  /** The same on Deno's blocking thread pool (a Promise), for slow requests. */
  ioctl_buf_background: {
    name: "ioctl",
    parameters: ["i32", "u32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  ioctl_u64: { name: "ioctl", parameters: ["i32", "u32", "u64"], result: "i32" },
  /** The hot path: KVM_RUN takes no argument. */
  ioctl_run: { name: "ioctl", parameters: ["i32", "u32", "u32"], result: "i32" },
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
  },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pthread_self: { parameters: [], result: "u64" },
  pthread_kill: { parameters: ["u64", "i32"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // timer_t is an opaque handle (glibc: a small integer in a pointer-sized slot).
  timer_create: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  timer_settime: { parameters: ["u64", "i32", "buffer", "buffer"], result: "i32" },
  timer_delete: { parameters: ["u64"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;

/** The libc symbols, opened on first use (module start-up stays free of FFI). */
export function libc(): Libc {
  if (lib === null) lib = Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

// ── constants (x86-64 Linux) ─────────────────────────────────────────────────────
export const O_RDWR = 0o2;
export const O_RDONLY = 0;
export const O_CLOEXEC = 0o2000000;
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MFD_CLOEXEC = 1;
/** errno values the runtime tests for (asm-generic/errno-base.h). */
export const EINTR = 4;
export const EAGAIN = 11;
export const SIGUSR1 = 10;
export const SIGUSR2 = 12;
/**
 * The signal that kicks a vCPU thread out of KVM_RUN. Not SIGUSR1: Deno, like Node, opens
 * its inspector on SIGUSR1 ("Debugger listening on ws://127.0.0.1:9229"), so a kick with it
 * would open a debugging port.
 */
export const KICK_SIGNAL = SIGUSR2;
export const KICK_SIGNAL_NAME = "SIGUSR2" as const;
/** (void *)-1 */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** errno numbers we name (asm-generic/errno-base.h and errno.h, x86-64). */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  22: "EINVAL",
  24: "EMFILE",
  25: "ENOTTY",
  28: "ENOSPC",
  38: "ENOSYS",
  95: "EOPNOTSUPP",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** A failed libc call: which call, the errno and its name (EACCES, ENOENT, EINTR, ...). */
export class HostError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly errnoName: string,
    detail: string,
  ) {
    super(`${call}: ${errnoName} (${detail})`);
    this.name = "HostError";
  }
}

/** errno of the last failed call on this thread. Read it before any other libc call. */
export function errno(): number {
  const p = libc().__errno_location();
  return new Deno.UnsafePointerView(p!).getInt32();
}

function strerror(e: number): string {
  const p = libc().strerror(e);
  return p === null ? `errno ${e}` : new Deno.UnsafePointerView(p).getCString();
}

/** Throws HostError for the errno of the call that just failed. */
export function fail(call: string): never {
  const e = errno();
  throw new HostError(call, e, errnoName(e), strerror(e));
}

const enc = new TextEncoder();
function cstr(s: string): Uint8Array<ArrayBuffer> {
  return enc.encode(s + "\0");
}

// ── checked wrappers ───────────────────────────────────────────────────────────────

export function open(path: string, flags: number): number {
  const fd = libc().open(cstr(path), flags | O_CLOEXEC, 0);
  if (fd < 0) fail(`open ${path}`);
  return fd;
}

export function close(fd: number): void {
  // close never needs retrying on Linux (the fd is gone even on EINTR).
  libc().close(fd);
}

/** ioctl with an integer argument (or none); returns the non-negative result. */
export function ioctl(
  fd: number,
  request: number,
  arg: number | bigint = 0,
  what = "ioctl",
): number {
  const r = libc().ioctl_u64(fd, request, BigInt(arg));
  if (r < 0) fail(what);
  return r;
}

/** ioctl with a pointer to a buffer the kernel reads and/or writes. */
export function ioctlBuf(
  fd: number,
  request: number,
  buf: Uint8Array<ArrayBuffer>,
  what = "ioctl",
): number {
  const r = libc().ioctl_buf(fd, request, buf);
  if (r < 0) fail(what);
  return r;
}

/**
 * ioctlBuf on Deno's blocking thread pool: this thread goes on while the kernel works (on
 * the other core), and the Promise settles when the call returns. The call's errno stays
 * on the pool thread, so after a failure the call is repeated here to learn it: for
 * requests that fail the same way twice (KVM_SET_USER_MEMORY_REGION does), and `buf` must
 * stay untouched until the Promise settles.
 */
export async function ioctlBufInBackground(
  fd: number,
  request: number,
  buf: Uint8Array<ArrayBuffer>,
  what = "ioctl",
): Promise<number> {
  const r = await libc().ioctl_buf_background(fd, request, buf);
  return r >= 0 ? r : ioctlBuf(fd, request, buf, what);
}

// ── live mappings (for leak tests) ───────────────────────────────────────────────────
// Every range this thread mapped through mmap() below and has not unmapped, page-rounded.
// Tests compare it before and after (and check each range against /proc/self/maps), which
// tells a leaked guest-RAM or kvm_run mapping apart from the JS engine's own heap
// mappings. Per isolate, like the libc handle: the runtime maps from the main thread.
const HOST_PAGE = 4096n;
const live = new Map<bigint, bigint>(); // start -> end

function track(addr: bigint, length: number, fixed: boolean): void {
  const end = addr + (BigInt(length) + HOST_PAGE - 1n) / HOST_PAGE * HOST_PAGE;
  // A MAP_FIXED piece inside a range already tracked (a reservation) adds nothing.
  if (fixed) {
    for (const [s, e] of live) if (s <= addr && end <= e) return;
  }
  live.set(addr, end);
}

function untrack(addr: bigint, length: number): void {
  const end = addr + (BigInt(length) + HOST_PAGE - 1n) / HOST_PAGE * HOST_PAGE;
  for (const [s, e] of [...live]) {
    if (e <= addr || s >= end) continue;
    live.delete(s);
    if (s < addr) live.set(s, addr);
    if (e > end) live.set(end, e);
  }
}

/** The ranges this thread has mapped and not unmapped, in address order. */
export function liveMappings(): { addr: bigint; end: bigint }[] {
  return [...live].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([addr, end]) => ({ addr, end }));
}

export function mmap(
  addr: bigint,
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
  what = "mmap",
): bigint {
  const p = libc().mmap(
    addr === 0n ? null : Deno.UnsafePointer.create(addr),
    BigInt(length),
    prot,
    flags,
    fd,
    BigInt(offset),
  );
  const v = Deno.UnsafePointer.value(p);
  if (BigInt(v) === MAP_FAILED) fail(what);
  track(BigInt(v), length, (flags & MAP_FIXED) !== 0);
  return BigInt(v);
}

/**
 * Maps many MAP_FIXED pieces into a reservation this thread mapped (and tracks): one FFI
 * call each and nothing else per piece. The shadow hole maps hundreds of aliases while
 * the VM is built, before the JIT has warmed up, where the general wrapper's per-call
 * bookkeeping cost several times the system call itself.
 */
export function mmapFixedInto(
  base: bigint,
  pieces: readonly {
    offset: number;
    size: number;
    prot: number;
    flags: number;
    fd: number;
    fileOffset: number;
  }[],
  what: string,
): void {
  const sym = libc();
  const failed = Deno.UnsafePointer.create(MAP_FAILED);
  for (const p of pieces) {
    const want = base + BigInt(p.offset);
    const got = sym.mmap(
      Deno.UnsafePointer.create(want),
      BigInt(p.size),
      p.prot,
      p.flags | MAP_FIXED,
      p.fd,
      BigInt(p.fileOffset),
    );
    if (Deno.UnsafePointer.equals(got, failed)) fail(what);
  }
}

export function munmap(addr: bigint, length: number): void {
  if (libc().munmap(Deno.UnsafePointer.create(addr), BigInt(length)) < 0) fail("munmap");
  untrack(addr, length);
}

export const MADV_HUGEPAGE = 14;

/** madvise(2) as a hint: false when the kernel declines (no THP), never an error. */
export function madvise(addr: bigint, length: number, advice: number): boolean {
  return libc().madvise(Deno.UnsafePointer.create(addr), BigInt(length), advice) === 0;
}

export function memfdCreate(name: string): number {
  const fd = libc().memfd_create(cstr(name), MFD_CLOEXEC);
  if (fd < 0) fail("memfd_create");
  return fd;
}

export function ftruncate(fd: number, size: number): void {
  if (libc().ftruncate(fd, BigInt(size)) < 0) fail("ftruncate");
}

/** pthread_t of the calling thread (a worker publishes it so the main thread can kick it). */
export function pthreadSelf(): bigint {
  return BigInt(libc().pthread_self());
}

/** Sends `sig` to one thread; returns false if the thread is gone (ESRCH). */
export function pthreadKill(thread: bigint, sig: number): boolean {
  return libc().pthread_kill(thread, sig) === 0;
}

/** A raw pointer to host memory at `addr` (for DataView-free access through UnsafePointerView). */
export function ptr(addr: bigint): Deno.PointerObject {
  return Deno.UnsafePointer.create(addr)!;
}

/** An ArrayBuffer view over `length` bytes of host memory at `addr` (no copy). */
export function hostBytes(addr: bigint, length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr(addr), length));
}

/** True if `fd` has bytes to read (or is at end of file) right now; never blocks. */
export function pollReadable(fd: number): boolean {
  // struct pollfd { int fd; short events; short revents; }, POLLIN = 1.
  const pfd = new DataView(new ArrayBuffer(8));
  pfd.setInt32(0, fd, true);
  pfd.setInt16(4, 1, true);
  const n = libc().poll(new Uint8Array(pfd.buffer), 1n, 0);
  return n > 0 && pfd.getInt16(6, true) !== 0;
}

/**
 * A file of the kernel's (/proc, /sys) read whole, or null when it cannot be opened or
 * read. Through libc because Deno's file API lets only --allow-all programs read /proc and
 * /sys, and `vmdesc` runs with narrower permissions (--allow-ffi among them).
 */
export function readKernelFile(path: string, max = 4 << 20): string | null {
  let fd: number;
  try {
    fd = open(path, O_RDONLY);
  } catch {
    return null;
  }
  try {
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(1 << 16);
    let total = 0;
    while (total < max) {
      const n = Number(libc().read(fd, buf, BigInt(buf.length)));
      if (n < 0) {
        if (errno() === EINTR) continue;
        return null;
      }
      if (n === 0) break;
      parts.push(buf.slice(0, n));
      total += n;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder().decode(all);
  } finally {
    close(fd);
  }
}

/** Whether a path (a /sys directory, say) exists, asked through libc (see readKernelFile). */
export function kernelPathExists(path: string): boolean {
  try {
    close(open(path, O_RDONLY));
    return true;
  } catch {
    return false;
  }
}
