/**
 * The disk images of a Plan's block devices, opened before the VM is built: a file that
 * cannot be opened as the machine asks is E1018 with a hint, and nothing is left open.
 *
 * Each image is opened read-write (read-only for a `readonly` disk) with O_CLOEXEC, must be
 * a regular file or a block device of at least one 512-byte sector, and is locked with
 * flock(2): exclusively when writable, shared when read-only, so two vmdesc machines never
 * write one image at once (a second writer, or a writer next to readers, is refused).
 * The descriptors are plain numbers, usable from a vCPU worker; the machine closes them
 * after its device models are closed.
 *
 * A disk's image can be swapped while the machine is paused (the control API's
 * PUT /v1/disks/{id}): `prepareSwap` opens the new image with the same checks while the
 * old one stays open, so a bad new image leaves the disk as it was; the device takes the
 * new one on vCPU 0's thread, and only then is the old one closed.
 */
import type { Plan } from "../../plan/types.ts";
import type { DiskImage } from "../devices/device.ts";
import { close, HostError, O_RDONLY, O_RDWR, open } from "../host/libc.ts";
import { EAGAIN, flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, sizeOf } from "../host/file_io.ts";
import { RuntimeError } from "../errors.ts";

const SECTOR = 512;

export interface OpenDisks {
  /** The images as opened at the start (what vCPU 0's models are built with). */
  readonly images: readonly DiskImage[];
  /** Each disk as it is now (after any swap), in the Plan's order. */
  list(): DiskInfo[];
  /**
   * Opens `path` as disk `id`'s next image, with the same checks as at the start (E1018),
   * while the current one stays open: E1070 when no disk has that id, E1072 when a
   * read-only disk is asked to take a writable image. The new image is tracked at once,
   * so close() releases it whatever happens next; `commit` makes it the disk's image and
   * closes the old one, `abandon` closes the new one.
   */
  prepareSwap(id: string, path: string, readonly: boolean | undefined): PreparedSwap;
  /** Closes every image (releasing its lock). Idempotent. */
  close(): void;
}

/** A disk as the control API shows it. */
export interface DiskInfo {
  id: string;
  kind: string;
  path: string;
  readonly: boolean;
  size_bytes: number;
  /** Whether the disk was built read-only (the guest was told so: VIRTIO_BLK_F_RO). */
  built_readonly: boolean;
}

export interface PreparedSwap {
  /** The new image (plain data, for vCPU 0). */
  readonly image: DiskImage;
  /** The device took the new image: it is the disk's now; the old one is closed. */
  commit(): DiskInfo;
  /** The device did not take it: the new image is closed, the old one stays. */
  abandon(): void;
}

interface Wanted {
  id: string;
  kind: string;
  path: string;
  readonly: boolean;
}

/** The block devices of a Plan: virtio-mmio devices by id, virtio PCI functions by BDF. */
function wanted(plan: Plan): Wanted[] {
  const out: Wanted[] = [];
  for (const d of plan.devices) {
    const b = d.virtio?.backing;
    if (b?.kind === "file") {
      out.push({ id: d.id, kind: d.kind, path: b.path, readonly: b.readonly });
    }
  }
  for (const f of plan.pci) {
    const b = f.virtio?.backing;
    if (b?.kind === "file") {
      out.push({ id: f.bdf, kind: f.kind, path: b.path, readonly: b.readonly });
    }
  }
  return out;
}

function resolve(baseDir: string, p: string): string {
  return p.startsWith("/") ? p : `${baseDir.replace(/\/+$/, "")}/${p}`;
}

function why(e: HostError, w: Wanted, path: string, baseDir: string): [string, string] {
  const where = w.path.startsWith("/") ? "" : ` (relative paths start in ${baseDir})`;
  switch (e.errnoName) {
    case "ENOENT":
      return [
        "no such file",
        `create it (e.g. \`truncate -s 64M ${path}\`), or fix the path${where}`,
      ];
    case "EACCES":
    case "EPERM":
      return [
        "permission denied",
        w.readonly
          ? "let this user read it"
          : "let this user read and write it, or add `readonly true` to use it read-only",
      ];
    case "EROFS":
      return ["it is on a read-only file system", "add `readonly true` to use it read-only"];
    case "EISDIR":
      return ["it is a directory", "name the image file itself"];
    default:
      return [e.message, `check the path${where}`];
  }
}

/** One image opened as `w` asks, with its file's identity (to spot the same file again). */
interface Opened {
  image: DiskImage;
  dev: number;
  ino: number;
}

/**
 * Opens one image as `w` asks: E1018 with a hint when it cannot be; nothing is left open
 * then. `path` is resolved already.
 */
function openImage(
  w: Wanted,
  path: string,
  baseDir: string,
  warn: (message: string) => void,
): Opened {
  let fd = -1;
  const fail = (reason: string, hint: string): never => {
    if (fd >= 0) close(fd); // closing drops the flock too
    throw new RuntimeError(
      "E1018",
      `${w.kind} ${w.id}: cannot open its image ${path}: ${reason}`,
      hint,
    );
  };
  try {
    fd = open(path, w.readonly ? O_RDONLY : O_RDWR);
  } catch (e) {
    if (!(e instanceof HostError)) throw e;
    const [reason, hint] = why(e, w, path, baseDir);
    return fail(reason, hint);
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    return fail((e as Error).message, "check the path");
  }
  if (!info.isFile && !info.isBlockDevice) {
    fail("it is not a regular file or a block device", "name a raw disk image file");
  }
  const lock = flock(fd, (w.readonly ? LOCK_SH : LOCK_EX) | LOCK_NB);
  if (lock === -EAGAIN) {
    fail(
      w.readonly ? "another machine is writing it" : "another machine has it open",
      w.readonly
        ? "stop the machine that writes it first"
        : "stop the other machine, or give both `readonly true` to share it read-only",
    );
  } else if (lock < 0) {
    fail(`flock failed (errno ${-lock})`, "put the image on a local file system");
  }
  const size = sizeOf(fd);
  if (size < 0) fail(`its size cannot be read (errno ${-size})`, "check the file");
  if (size < SECTOR) {
    fail(
      `it is ${size} bytes, less than one 512-byte sector`,
      `grow it, e.g. \`truncate -s 64M ${path}\``,
    );
  }
  if (size % SECTOR !== 0) {
    warn(
      `${w.kind} ${w.id}: ${path} is ${size} bytes; the guest sees its ${
        Math.floor(size / SECTOR)
      } whole sectors, not the last ${size % SECTOR} bytes`,
    );
  }
  return {
    image: { id: w.id, path, fd, size, readonly: w.readonly },
    dev: info.dev,
    ino: info.ino ?? -1,
  };
}

/**
 * Opens every image the Plan names (relative paths from `baseDir`, the Plan's directory).
 * `warn` hears about an image whose size is not a whole number of sectors.
 */
export function openDiskImages(
  plan: Plan,
  baseDir: string,
  warn: (message: string) => void,
): OpenDisks {
  const disks = wanted(plan);
  /** Each disk's image now, by id. */
  const current = new Map<string, Opened>();
  /** Every fd this object must close (an abandoned swap whose answer never came stays). */
  const fds = new Set<number>();
  let closed = false;
  const closeAll = () => {
    if (closed) return;
    closed = true;
    for (const fd of fds) close(fd); // closing drops the flock too
    fds.clear();
  };
  const images: DiskImage[] = [];
  try {
    for (const w of disks) {
      const opened = openImage(w, resolve(baseDir, w.path), baseDir, warn);
      fds.add(opened.image.fd);
      current.set(w.id, opened);
      images.push(opened.image);
    }
  } catch (e) {
    closeAll();
    throw e;
  }
  const infoOf = (w: Wanted): DiskInfo => {
    const { image } = current.get(w.id)!;
    return {
      id: w.id,
      kind: w.kind,
      path: image.path.startsWith("/") ? image.path : `${Deno.cwd()}/${image.path}`,
      readonly: image.readonly,
      size_bytes: image.size,
      built_readonly: w.readonly,
    };
  };
  return {
    images,
    list: () => disks.map(infoOf),
    prepareSwap(asked, path, readonly) {
      // A BDF may come in either case (00:1F.0 is 00:1f.0).
      const w = disks.find((d) => d.id.toLowerCase() === asked.toLowerCase());
      if (!w || closed) {
        const ids = disks.map((d) => d.id);
        throw new RuntimeError(
          "E1070",
          `no disk '${asked}' in this machine`,
          ids.length
            ? `its disks: ${ids.join(", ")} (a virtio_blk device's name, or its PCI function's BDF)`
            : "this machine has no block device",
        );
      }
      const id = w.id;
      const old = current.get(id)!;
      const ro = readonly ?? old.image.readonly;
      if (w.readonly && !ro) {
        throw new RuntimeError(
          "E1072",
          `${w.kind} ${id} was built read-only: it cannot take a writable image`,
          "the guest was told the disk is read-only (VIRTIO_BLK_F_RO) until it is reset; swap in a read-only image (`--readonly`), or give the disk `readonly false` in the .vmdesc",
        );
      }
      if (!path.startsWith("/")) {
        throw new RuntimeError(
          "E1018",
          `${w.kind} ${id}: cannot open its image ${path}: the path is relative`,
          "give an absolute path (`vmdesc ctl` makes a relative one absolute)",
        );
      }
      // The same file again (grown or shrunk in place, say): a second open would meet our
      // own flock, so the fd stays and only its size is read again.
      let same = false;
      try {
        const st = Deno.statSync(path);
        same = st.dev === old.dev && st.ino === old.ino && st.ino !== null;
      } catch {
        // openImage says why
      }
      let next: Opened;
      /** Undoes what preparing did to the old image (its lock), when the swap is abandoned. */
      let restore = () => {};
      if (same && !(ro === false && old.image.readonly)) {
        const size = sizeOf(old.image.fd);
        if (size < SECTOR) {
          throw new RuntimeError(
            "E1018",
            `${w.kind} ${id}: cannot open its image ${path}: it is ${
              Math.max(size, 0)
            } bytes, less than one 512-byte sector`,
            `grow it, e.g. \`truncate -s 64M ${path}\``,
          );
        }
        next = { ...old, image: { ...old.image, path, size, readonly: ro } };
      } else if (same) {
        // Back to writable on the same file: our own shared lock would refuse the
        // exclusive one, so it goes first (and comes back if the open fails).
        flock(old.image.fd, LOCK_UN);
        try {
          next = openImage({ ...w, path, readonly: ro }, path, "/", warn);
        } catch (e) {
          flock(old.image.fd, LOCK_SH | LOCK_NB);
          throw e;
        }
        fds.add(next.image.fd);
        restore = () => flock(old.image.fd, LOCK_SH | LOCK_NB);
      } else {
        next = openImage({ ...w, path, readonly: ro }, path, "/", warn);
        fds.add(next.image.fd);
      }
      let settled = false;
      return {
        image: next.image,
        commit() {
          if (settled) return infoOf(w);
          settled = true;
          current.set(id, next);
          if (next.image.fd !== old.image.fd) {
            fds.delete(old.image.fd);
            close(old.image.fd);
          } else if (ro && !old.image.readonly) {
            // Still ours, now read-only: others may read it too.
            flock(next.image.fd, LOCK_SH | LOCK_NB);
          }
          return infoOf(w);
        },
        abandon() {
          if (settled) return;
          settled = true;
          if (next.image.fd !== old.image.fd) {
            fds.delete(next.image.fd);
            close(next.image.fd);
          }
          restore();
        },
      };
    },
    close: closeAll,
  };
}
