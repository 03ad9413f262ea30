/**
 * A streaming writer of the "newc" cpio format, the one Linux unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * Each entry is a 110-byte ASCII header ("070701" and 13 fields of 8 hex digits), the
 * NUL-terminated name padded to a multiple of 4 bytes (counting the header), then the data
 * padded likewise; the archive ends with the entry "TRAILER!!!". Written here rather than by
 * the `cpio` tool because the image maps host paths to other paths without a staging copy,
 * and Debian installs no `cpio` by default.
 */

export type Sink = (bytes: Uint8Array) => Promise<void>;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const encoder = new TextEncoder();
const pad4 = (n: number) => (4 - (n % 4)) % 4;
const ZEROS = new Uint8Array(4);

export interface EntryOptions {
  /** Permission bits (the file type is added by the writer). */
  mode?: number;
  /** Seconds since the epoch. */
  mtime?: number;
}

export class CpioWriter {
  #ino = 1;
  #written = 0;
  #closed = false;

  constructor(readonly sink: Sink) {}

  /** Bytes written so far. */
  get size(): number {
    return this.#written;
  }

  async directory(path: string, opts: EntryOptions = {}): Promise<void> {
    await this.#entry(path, S_IFDIR | (opts.mode ?? 0o755), opts.mtime ?? 0, 0, 2);
  }

  async symlink(path: string, target: string, opts: EntryOptions = {}): Promise<void> {
    const data = encoder.encode(target);
    await this.#entry(path, S_IFLNK | 0o777, opts.mtime ?? 0, data.length, 1);
    await this.#data(data);
  }

  async characterDevice(
    path: string,
    major: number,
    minor: number,
    opts: EntryOptions = {},
  ): Promise<void> {
    await this.#entry(path, S_IFCHR | (opts.mode ?? 0o600), opts.mtime ?? 0, 0, 1, major, minor);
  }

  /** A regular file from bytes in memory. */
  async file(path: string, data: Uint8Array, opts: EntryOptions = {}): Promise<void> {
    await this.#entry(path, S_IFREG | (opts.mode ?? 0o644), opts.mtime ?? 0, data.length, 1);
    await this.#data(data);
  }

  /**
   * A regular file streamed from a host file of `size` bytes. The size is taken up front (it
   * goes in the header); a file that changes length while it is read is an error rather
   * than a corrupt archive.
   */
  async hostFile(path: string, from: string, size: number, opts: EntryOptions = {}): Promise<void> {
    await this.#entry(path, S_IFREG | (opts.mode ?? 0o644), opts.mtime ?? 0, size, 1);
    using f = await Deno.open(from, { read: true });
    let left = size;
    const buf = new Uint8Array(1 << 20);
    while (left > 0) {
      const n = await f.read(buf.subarray(0, Math.min(buf.length, left)));
      if (n === null) throw new Error(`${from} shrank while it was packed`);
      await this.#write(buf.slice(0, n));
      left -= n;
    }
    if (await f.read(new Uint8Array(1)) !== null) {
      throw new Error(`${from} grew while it was packed`);
    }
    await this.#write(ZEROS.subarray(0, pad4(size)));
  }

  /** Writes the trailer; the archive is complete after this. */
  async finish(): Promise<void> {
    if (this.#closed) return;
    await this.#entry("TRAILER!!!", 0, 0, 0, 1);
    this.#closed = true;
  }

  async #entry(
    path: string,
    mode: number,
    mtime: number,
    size: number,
    nlink: number,
    rdevMajor = 0,
    rdevMinor = 0,
  ): Promise<void> {
    if (this.#closed) throw new Error("cpio archive already finished");
    const name = encoder.encode(path.replace(/^\/+/, "") || ".");
    const hex = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
    const header = "070701" +
      [
        this.#ino++,
        mode,
        0, // uid: root
        0, // gid
        nlink,
        mtime,
        size,
        0, // devmajor
        0, // devminor
        rdevMajor,
        rdevMinor,
        name.length + 1,
        0, // check
      ].map(hex).join("");
    const head = new Uint8Array(110 + name.length + 1 + pad4(110 + name.length + 1));
    head.set(encoder.encode(header), 0);
    head.set(name, 110);
    await this.#write(head);
  }

  async #data(data: Uint8Array): Promise<void> {
    await this.#write(data);
    await this.#write(ZEROS.subarray(0, pad4(data.length)));
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    await this.sink(bytes);
    this.#written += bytes.length;
  }
}
