/**
 * Guest memory: host mappings behind the Plan's memslots, and `GuestMemory`, the one
 * bounds-checked accessor boot loaders and devices use to reach guest-physical addresses
 * (devices get its RAM-only form, `ram()`).
 *
 * Backings:
 * - `anonymous`: private anonymous mapping (MAP_NORESERVE: untouched RAM costs nothing).
 * - `file`: the file mapped privately at its offset; the part of the slot past the end of
 *   the file is anonymous zeroes (a file mapping beyond EOF would SIGBUS on access).
 * - `ones_alias`: built by `./ones_alias.ts` (the `shadow` hole strategy).
 *
 * A host that refuses a mapping (out of memory or address space, an unreadable file) is
 * E1006 for that memslot, with a hint; nothing mapped so far is left behind.
 */
import type { Memslot } from "../../plan/types.ts";
import * as host from "../host/libc.ts";
import { RuntimeError } from "../errors.ts";
import { createOnesAlias, planPieces } from "./ones_alias.ts";

/** Host memory behind one memslot. `release()` unmaps it and closes any fd; idempotent. */
export interface HostMapping {
  addr: bigint;
  size: number;
  release(): void;
}

const PAGE = 4096;

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

function anonymous(size: number): HostMapping {
  const addr = host.mmap(
    0n,
    size,
    host.PROT_READ | host.PROT_WRITE,
    host.MAP_PRIVATE | host.MAP_ANONYMOUS | host.MAP_NORESERVE,
    -1,
    0,
    "mmap guest RAM",
  );
  // Transparent huge pages where the host allows them on request (THP "madvise", the usual
  // default): 2 MiB host pages make the guest's own memory accesses cheaper for KVM's MMU,
  // as QEMU asks for its RAM (the virtio-blk guest: ~5-20% less time per request here).
  host.madvise(addr, size, host.MADV_HUGEPAGE);
  let live = true;
  return {
    addr,
    size,
    release() {
      if (live) {
        live = false;
        host.munmap(addr, size);
      }
    },
  };
}

function fileBacked(slot: Memslot, path: string, offset: number): HostMapping {
  let fileSize: number;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw new Error("not a regular file");
    fileSize = info.size;
  } catch {
    throw new RuntimeError(
      "E1006",
      `memslot "${slot.name}": backing file ${path} is not a readable regular file`,
      "check the path in the Plan's memslot backing",
    );
  }
  const m = anonymous(slot.size);
  const mapLen = Math.min(roundUp(Math.max(fileSize - offset, 0), PAGE), slot.size);
  if (mapLen > 0) {
    let fd = -1;
    try {
      fd = host.open(path, host.O_RDONLY);
      host.mmap(
        m.addr,
        mapLen,
        host.PROT_READ | host.PROT_WRITE,
        host.MAP_PRIVATE | host.MAP_FIXED,
        fd,
        offset,
        `mmap ${path}`,
      );
    } catch (e) {
      m.release();
      throw e;
    } finally {
      if (fd >= 0) host.close(fd);
    }
  }
  return m;
}

/**
 * How many host mappings (VMAs) a memslot takes, before the kernel merges any: one for
 * anonymous memory, two for a file (the file over an anonymous range), one per piece of a
 * `ones_alias` window (E1006 when the window needs too many; see ./ones_alias.ts).
 * `vmdesc doctor` compares a machine's sum with vm.max_map_count.
 */
export function mappingsFor(slot: Memslot): number {
  switch (slot.backing.kind) {
    case "file":
      return 2;
    case "ones_alias":
      return planPieces(slot).length;
    default:
      return 1;
  }
}

/** Creates the host mapping for one memslot (E1006 with a hint when the host refuses it). */
export function mapMemslot(slot: Memslot): HostMapping {
  try {
    return mapBacking(slot);
  } catch (e) {
    if (!(e instanceof host.HostError)) throw e;
    throw new RuntimeError(
      "E1006",
      `memslot "${slot.name}" (${slot.size} bytes): ${e.message}`,
      e.errnoName === "ENOMEM"
        ? "the host has no room for this much guest memory: lower `memory`, or check ulimit -v and vm.overcommit_memory"
        : "check the memslot's backing in the Plan",
    );
  }
}

function mapBacking(slot: Memslot): HostMapping {
  const b = slot.backing;
  switch (b.kind) {
    case "anonymous":
      return anonymous(slot.size);
    case "file":
      return fileBacked(slot, b.path, b.offset);
    case "ones_alias":
      return createOnesAlias(slot);
    default:
      throw new RuntimeError(
        "E1006",
        `memslot "${slot.name}": unsupported backing "${(b as { kind: string }).kind}"`,
        "memslot backings are anonymous, file and ones_alias",
      );
  }
}

/** One region of guest-physical space with its host address (what workers receive). */
export interface RegionInfo {
  name: string;
  guestPhys: number;
  size: number;
  /** Host address as a decimal string (bigints do not cross postMessage in every case). */
  hostAddr: string;
  readonly: boolean;
  /** True for guest RAM (anonymous or file backed, writable). */
  ram: boolean;
}

interface Region {
  info: RegionInfo;
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Guest-physical memory as the VMM sees it. Writes are bounds-checked: a range must lie
 * entirely inside memslots (it may cross from one slot into the next adjacent one).
 */
export class GuestMemory {
  readonly #regions: Region[];

  /**
   * Over the host mappings the regions name (`hostAddr`), or over `views` (one per region,
   * in the same order: memory that is not a memslot mapping, for tests).
   */
  constructor(regions: RegionInfo[], views?: Uint8Array<ArrayBuffer>[]) {
    this.#regions = regions
      .map((info, i) => ({
        info,
        bytes: views?.[i] ?? host.hostBytes(BigInt(info.hostAddr), info.size),
      }))
      .sort((a, b) => a.info.guestPhys - b.info.guestPhys);
  }

  /**
   * The RAM regions only: what device models get (runtime/devices/device.ts GuestRam), so
   * ROM, the shadow ECAM window and anything unmapped are outside every access they make.
   */
  ram(): GuestMemory {
    const keep = this.#regions.filter((r) => r.info.ram);
    return new GuestMemory(keep.map((r) => r.info), keep.map((r) => r.bytes));
  }

  get regions(): readonly RegionInfo[] {
    return this.#regions.map((r) => r.info);
  }

  #find(gpa: number): Region | undefined {
    for (const r of this.#regions) {
      if (gpa >= r.info.guestPhys && gpa < r.info.guestPhys + r.info.size) return r;
    }
    return undefined;
  }

  /** True when [gpa, gpa+len) lies entirely in RAM memslots. */
  isRam(gpa: number, len: number): boolean {
    let at = gpa;
    const end = gpa + len;
    while (at < end) {
      const r = this.#find(at);
      if (!r || !r.info.ram) return false;
      at = r.info.guestPhys + r.info.size;
    }
    return true;
  }

  /** Host view of [gpa, gpa+len) when it lies inside one memslot, else null. */
  view(gpa: number, len: number): Uint8Array<ArrayBuffer> | null {
    const r = this.#find(gpa);
    if (!r || gpa + len > r.info.guestPhys + r.info.size) return null;
    const o = gpa - r.info.guestPhys;
    return r.bytes.subarray(o, o + len);
  }

  /**
   * Views of [gpa, gpa+len), one per memslot it crosses, or null when part of it is outside
   * the memslots (of this memory: devices get the RAM-only form).
   */
  views(gpa: number, len: number): Uint8Array<ArrayBuffer>[] | null {
    const out: Uint8Array<ArrayBuffer>[] = [];
    let at = gpa;
    const end = gpa + len;
    while (at < end) {
      const r = this.#find(at);
      if (!r) return null;
      const o = at - r.info.guestPhys;
      const n = Math.min(end - at, r.info.size - o);
      out.push(r.bytes.subarray(o, o + n));
      at += n;
    }
    return out;
  }

  /**
   * Walks [gpa, gpa+len) region by region: `fn(bytes, offset, n, done)` for each piece, the
   * region's view, where in it, how long, and how much came before. Throws RangeError
   * outside memslots.
   */
  #each(
    gpa: number,
    len: number,
    fn: (bytes: Uint8Array, offset: number, n: number, done: number) => void,
  ): void {
    let done = 0;
    while (done < len) {
      const at = gpa + done;
      const r = this.#find(at);
      if (!r) throw new RangeError(`guest address 0x${at.toString(16)} is outside every memslot`);
      const o = at - r.info.guestPhys;
      const n = Math.min(len - done, r.info.size - o);
      fn(r.bytes, o, n, done);
      done += n;
    }
  }

  /** Copies bytes to guest-physical `gpa`. Throws RangeError outside memslots. */
  write(gpa: number, data: Uint8Array): void {
    this.#each(
      gpa,
      data.length,
      (bytes, o, n, done) => bytes.set(data.subarray(done, done + n), o),
    );
  }

  read(gpa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.#each(gpa, len, (bytes, o, n, done) => out.set(bytes.subarray(o, o + n), done));
    return out;
  }

  /** Sets [gpa, gpa+len) to `value` in place (a kernel's BSS is MiBs: no buffer of that size). */
  fill(gpa: number, len: number, value = 0): void {
    this.#each(gpa, len, (bytes, o, n) => bytes.fill(value, o, o + n));
  }

  writeU16(gpa: number, v: number): void {
    this.write(gpa, new Uint8Array([v & 0xff, (v >>> 8) & 0xff]));
  }
  writeU32(gpa: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(gpa, b);
  }
  writeU64(gpa: number, v: number | bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.write(gpa, b);
  }
}
