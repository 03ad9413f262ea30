/**
 * A cpio archive in the "newc" format (what Linux unpacks as an initramfs;
 * Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII
 * header of 13 eight-digit hex fields, the NUL-terminated name, the data, each padded to
 * 4 bytes, and a closing "TRAILER!!!" entry. Owners are root, times 0: the same inputs
 * always give the same bytes.
 */

export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string }
  /** A character device node, e.g. /dev/console (5, 1): no privileges needed to archive one. */
  | { kind: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = "TRAILER!!!";

const enc = new TextEncoder();
const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(f: {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  nameSize: number;
}): string {
  const h = (v: number) => (v >>> 0).toString(16).padStart(8, "0");
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
  // rdevminor, namesize, check
  return "070701" + h(f.ino) + h(f.mode) + h(0) + h(0) + h(f.nlink) + h(0) + h(f.size) +
    h(0) + h(0) + h(f.rdevMajor) + h(f.rdevMinor) + h(f.nameSize) + h(0);
}

/** The archive for `entries`, in the order given (a directory before what it holds). */
export function newc(entries: readonly CpioEntry[]): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    total += b.length;
  };
  const seen = new Set<string>();
  let ino = 1;
  const add = (name: string, mode: number, nlink: number, data: Uint8Array, rdev = [0, 0]) => {
    const nameBytes = enc.encode(name + "\0");
    push(enc.encode(header({
      ino: name === TRAILER ? 0 : ino++,
      mode,
      nlink,
      size: data.length,
      rdevMajor: rdev[0],
      rdevMinor: rdev[1],
      nameSize: nameBytes.length,
    })));
    push(nameBytes);
    push(new Uint8Array(pad4(110 + nameBytes.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    if (name === "" || name === TRAILER || name.split("/").includes("..")) {
      throw new RangeError(`bad cpio path "${e.path}"`);
    }
    if (seen.has(name)) throw new RangeError(`"${e.path}" is in the archive twice`);
    seen.add(name);
    switch (e.kind) {
      case "dir":
        add(name, S_IFDIR | (e.mode ?? 0o755), 2, new Uint8Array());
        break;
      case "file":
        add(name, S_IFREG | (e.mode ?? 0o644), 1, e.data);
        break;
      case "symlink":
        add(name, S_IFLNK | 0o777, 1, enc.encode(e.target));
        break;
      case "chardev":
        add(name, S_IFCHR | (e.mode ?? 0o600), 1, new Uint8Array(), [e.major, e.minor]);
        break;
    }
  }
  add(TRAILER, 0, 1, new Uint8Array());
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** gzip, as the kernel's initramfs unpacker reads it (CONFIG_RD_GZIP). */
export async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
