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
 */
import type { Plan } from "../../plan/types.ts";
import type { DiskImage } from "../devices/device.ts";
import { close, HostError, O_RDONLY, O_RDWR, open } from "../host/libc.ts";
import { EAGAIN, flock, LOCK_EX, LOCK_NB, LOCK_SH, sizeOf } from "../host/file_io.ts";
import { RuntimeError } from "../errors.ts";

const SECTOR = 512;

export interface OpenDisks {
  readonly images: readonly DiskImage[];
  /** Closes every image (releasing its lock). Idempotent. */
  close(): void;
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

/**
 * Opens every image the Plan names (relative paths from `baseDir`, the Plan's directory).
 * `warn` hears about an image whose size is not a whole number of sectors.
 */
export function openDiskImages(
  plan: Plan,
  baseDir: string,
  warn: (message: string) => void,
): OpenDisks {
  const images: DiskImage[] = [];
  let closed = false;
  const closeAll = () => {
    if (closed) return;
    closed = true;
    for (const d of images) close(d.fd); // closing drops the flock too
  };
  try {
    for (const w of wanted(plan)) {
      const path = resolve(baseDir, w.path);
      const fail = (reason: string, hint: string): never => {
        throw new RuntimeError(
          "E1018",
          `${w.kind} ${w.id}: cannot open its image ${path}: ${reason}`,
          hint,
        );
      };
      let fd: number;
      try {
        fd = open(path, w.readonly ? O_RDONLY : O_RDWR);
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
        const [reason, hint] = why(e, w, path, baseDir);
        return fail(reason, hint);
      }
      // Counted now, so a failure below closes it with the others.
      const image: DiskImage = { id: w.id, path, fd, size: 0, readonly: w.readonly };
      images.push(image);
      const info = Deno.statSync(path);
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
      image.size = size;
    }
  } catch (e) {
    closeAll();
    throw e;
  }
  return { images, close: closeAll };
}
