/**
 * virtio-blk (virtio 1.2, 5.2) over a raw image file: the disk's bytes are the file's, its
 * capacity the whole 512-byte sectors of the file as it was when the machine was built.
 *
 * Requests: IN (read), OUT (write), FLUSH (fdatasync), GET_ID (the `serial`, NUL-padded to
 * 20 bytes), DISCARD and WRITE_ZEROES (fallocate punch-hole / zero-range, offered only when
 * the image's file system punches holes); anything else is UNSUPP. Data moves with
 * pread/pwrite straight between the file and the guest's buffers.
 *
 * Nothing a guest asks can reach outside the image or change its size: every request is
 * checked against the capacity (past the end is IOERR), writes use pwrite inside it and
 * fallocate keeps the size (FALLOC_FL_KEEP_SIZE). A `readonly` disk (VIRTIO_BLK_F_RO; the
 * file opened read-only) answers writes, discards and write-zeroes with IOERR.
 *
 * The image was opened before the VM existed (runtime/io/disk_images.ts, E1018); the
 * machine closes it after the models, and close() here first syncs what was written.
 * While the machine is paused the control API may swap it for another (`swapImage`): the
 * old one is synced, the capacity becomes the new image's, and the transport bumps the
 * configuration generation and raises a configuration-change interrupt, as a driver
 * expects of a resized disk (Linux's virtio_blk re-reads the capacity then).
 */
import type { DiskImage } from "../../device.ts";
import { type BackendArgs, configReader } from "../backend.ts";
import type { VirtioBackend } from "../core.ts";
import type { Chain } from "../queue.ts";
import { bit } from "../spec.ts";
import { readStream, sliceStream, writeStream } from "../buffers.ts";
import { invalidPlan } from "../../errors.ts";
import {
  EOPNOTSUPP,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  fallocate,
  fdatasync,
  preadFull,
  pwriteFull,
} from "../../../host/file_io.ts";

export const SECTOR = 512;

/** Feature bits (5.2.3). */
const F_SEG_MAX = 2;
const F_RO = 5;
const F_BLK_SIZE = 6;
const F_FLUSH = 9;
const F_DISCARD = 13;
const F_WRITE_ZEROES = 14;

/** Request types (5.2.6). */
export const T = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
/** Status values. */
export const S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

const HEADER = 16;
const ID_BYTES = 20;
/** DISCARD / WRITE_ZEROES: segments per request, sectors per segment (QEMU's limits). */
const MAX_SEGMENTS = 1;
const MAX_SECTORS = 0x3f_ffff;
const WRITE_ZEROES_UNMAP = 1;

/** struct virtio_blk_config up to write_zeroes_may_unmap (+ padding): 60 bytes. */
const CONFIG_SIZE = 60;

export function createBlk({ id, label, plan, ctx }: BackendArgs): VirtioBackend {
  const b = plan.backing;
  if (b.kind !== "file") {
    throw invalidPlan(`${label}: a virtio_blk device needs a file backing`, "give it `file`");
  }
  const disk = ctx.disk?.(id);
  if (!disk) {
    throw invalidPlan(
      `${label}: its image was not opened`,
      "disk images are opened by the machine before the VM is built (runtime/io/disk_images.ts)",
    );
  }
  // The image: all of this changes when it is swapped (swapImage), the features do not.
  let fd = disk.fd;
  let readonly = disk.readonly;
  let sectors = Math.floor(disk.size / SECTOR);
  let capacity = sectors * SECTOR;
  const queueSize = plan.queue_sizes[0];
  // DISCARD and WRITE_ZEROES only where the file system punches holes: a hole punched
  // past the end of the file, keeping its size, changes nothing and tells us.
  const punchesHoles = (image: DiskImage) =>
    !image.readonly &&
    fallocate(image.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, image.size, SECTOR) === 0;
  let punches = punchesHoles(disk);
  let features = bit(F_SEG_MAX) | bit(F_BLK_SIZE) | bit(F_FLUSH);
  if (readonly) features |= bit(F_RO);
  if (punches) features |= bit(F_DISCARD) | bit(F_WRITE_ZEROES);
  const offersDiscard = punches;

  const config = new Uint8Array(CONFIG_SIZE);
  const cv = new DataView(config.buffer);
  cv.setBigUint64(0, BigInt(sectors), true);
  cv.setUint32(12, Math.max(1, queueSize - 2), true); // seg_max: the ring less header and status
  cv.setUint32(20, SECTOR, true); // blk_size
  cv.setUint16(34, 1, true); // num_queues
  if (punches) {
    cv.setUint32(36, MAX_SECTORS, true); // max_discard_sectors
    cv.setUint32(40, MAX_SEGMENTS, true); // max_discard_seg
    cv.setUint32(44, 1, true); // discard_sector_alignment
    cv.setUint32(48, MAX_SECTORS, true); // max_write_zeroes_sectors
    cv.setUint32(52, MAX_SEGMENTS, true); // max_write_zeroes_seg
    config[56] = 1; // write_zeroes_may_unmap
  }
  const serial = new Uint8Array(ID_BYTES);
  serial.set(new TextEncoder().encode(b.serial).subarray(0, ID_BYTES));

  const counters = {
    reads: 0,
    writes: 0,
    read_bytes: 0,
    write_bytes: 0,
    flushes: 0,
    get_ids: 0,
    discards: 0,
    write_zeroes: 0,
    status_ioerr: 0,
    status_unsupp: 0,
    malformed: 0,
    swaps: 0,
  };
  let dirty = false;
  let warnedMalformed = false;

  /** Bytes [sector * 512, + len) lie inside the disk, and len is whole sectors. */
  function inDisk(sectorLo: number, sectorHi: number, len: number): boolean {
    if (len % SECTOR !== 0) return false;
    // A 64-bit sector number: past `sectors` it is outside, whatever its low half says.
    const sector = sectorHi * 2 ** 32 + sectorLo;
    return sector <= sectors && sector * SECTOR + len <= capacity;
  }

  function read(chain: Chain, sector: number, sectorHi: number): number {
    const len = chain.writeLen - 1;
    if (!inDisk(sector, sectorHi, len)) return S.IOERR;
    let pos = (sectorHi * 2 ** 32 + sector) * SECTOR;
    for (const piece of sliceStream(chain.writable, 0, len)) {
      if (preadFull(fd, piece, pos) !== piece.length) return S.IOERR;
      pos += piece.length;
    }
    counters.reads++;
    counters.read_bytes += len;
    return S.OK;
  }

  function write(chain: Chain, sector: number, sectorHi: number): number {
    const len = chain.readLen - HEADER;
    if (readonly || !inDisk(sector, sectorHi, len)) return S.IOERR;
    let pos = (sectorHi * 2 ** 32 + sector) * SECTOR;
    for (const piece of sliceStream(chain.readable, HEADER, len)) {
      if (pwriteFull(fd, piece, pos) !== piece.length) return S.IOERR;
      pos += piece.length;
    }
    dirty = true;
    counters.writes++;
    counters.write_bytes += len;
    return S.OK;
  }

  /** DISCARD and WRITE_ZEROES: segments of (sector u64, num_sectors u32, flags u32). */
  function zeroOrDiscard(chain: Chain, type: number): number {
    if (!offersDiscard) return readonly ? S.IOERR : S.UNSUPP;
    // Offered for the image the disk was built with; one swapped in since may not punch.
    if (!punches) return S.IOERR;
    const bytes = chain.readLen - HEADER;
    if (bytes <= 0 || bytes % 16 !== 0 || bytes / 16 > MAX_SEGMENTS) return S.UNSUPP;
    const segs = readStream(chain.readable, HEADER, bytes);
    const dv = new DataView(segs.buffer, segs.byteOffset, segs.byteLength);
    for (let o = 0; o < bytes; o += 16) {
      const lo = dv.getUint32(o, true);
      const hi = dv.getUint32(o + 4, true);
      const n = dv.getUint32(o + 8, true);
      const flags = dv.getUint32(o + 12, true);
      const allowed = type === T.WRITE_ZEROES ? WRITE_ZEROES_UNMAP : 0;
      if (flags & ~allowed) return S.UNSUPP;
      if (n > MAX_SECTORS || !inDisk(lo, hi, n * SECTOR)) return S.IOERR;
      const at = (hi * 2 ** 32 + lo) * SECTOR;
      const len = n * SECTOR;
      if (len === 0) continue;
      const keep = FALLOC_FL_KEEP_SIZE;
      let r: number;
      if (type === T.DISCARD) r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | keep, at, len);
      else {
        r = (flags & WRITE_ZEROES_UNMAP)
          ? fallocate(fd, FALLOC_FL_PUNCH_HOLE | keep, at, len)
          : fallocate(fd, FALLOC_FL_ZERO_RANGE | keep, at, len);
        // Where zero-range is missing, a punched hole reads back as zeros too.
        if (r === -EOPNOTSUPP) r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | keep, at, len);
      }
      if (r !== 0) return S.IOERR;
      dirty = true;
    }
    if (type === T.DISCARD) counters.discards++;
    else counters.write_zeroes++;
    return S.OK;
  }

  return {
    features,
    configSize: CONFIG_SIZE,
    readConfig: configReader(config),
    writeConfig() {
      // Nothing in virtio_blk_config is the driver's to write without CONFIG_WCE.
    },
    handle(_queue: number, chain: Chain): number {
      // A request is a 16-byte header the device reads and a status byte it writes.
      if (chain.readLen < HEADER || chain.writeLen < 1) {
        counters.malformed++;
        if (!warnedMalformed) {
          warnedMalformed = true;
          ctx.warn(
            `${label}: a request without its 16-byte header or status byte: returned with nothing written (reported once; \`--stats\` counts them)`,
          );
        }
        return 0;
      }
      const h = readStream(chain.readable, 0, HEADER);
      const hv = new DataView(h.buffer);
      const type = hv.getUint32(0, true);
      const sector = hv.getUint32(8, true);
      const sectorHi = hv.getUint32(12, true);
      let status: number;
      let written = 1; // the status byte
      switch (type) {
        case T.IN:
          status = read(chain, sector, sectorHi);
          if (status === S.OK) written += chain.writeLen - 1;
          break;
        case T.OUT:
          status = write(chain, sector, sectorHi);
          break;
        case T.FLUSH:
          counters.flushes++;
          status = readonly || !dirty || fdatasync(fd) === 0 ? S.OK : S.IOERR;
          if (status === S.OK) dirty = false;
          break;
        case T.GET_ID: {
          const n = Math.min(chain.writeLen - 1, ID_BYTES);
          writeStream(chain.writable, 0, serial.subarray(0, n));
          counters.get_ids++;
          status = S.OK;
          written += n;
          break;
        }
        case T.DISCARD:
        case T.WRITE_ZEROES:
          status = zeroOrDiscard(chain, type);
          break;
        default:
          status = S.UNSUPP;
      }
      if (status === S.IOERR) counters.status_ioerr++;
      else if (status === S.UNSUPP) counters.status_unsupp++;
      writeStream(chain.writable, chain.writeLen - 1, Uint8Array.of(status));
      return written;
    },
    reset() {},
    stats() {
      return { ...counters, capacity_sectors: sectors, readonly: readonly ? 1 : 0 };
    },
    close() {
      // What the guest wrote is in the page cache already; put it on the disk as well.
      if (dirty) fdatasync(fd);
      dirty = false;
    },
    swapImage(image: DiskImage) {
      // What the guest wrote to the old image goes to its disk before the machine closes it.
      if (dirty) fdatasync(fd);
      dirty = false;
      fd = image.fd;
      // A disk built read-only stays so (the driver negotiated VIRTIO_BLK_F_RO); one built
      // writable answers writes to a read-only image with IOERR.
      readonly = image.readonly;
      sectors = Math.floor(image.size / SECTOR);
      capacity = sectors * SECTOR;
      punches = offersDiscard && punchesHoles(image);
      cv.setBigUint64(0, BigInt(sectors), true);
      counters.swaps++;
    },
  };
}
