/**
 * The `shadow` PCI-hole backing: host memory for a read-only ECAM memslot in which absent
 * PCI functions read as all-ones without a VM exit, and present functions read their live
 * config space, also without an exit.
 *
 * Layout of the slot's host range (one reservation, then MAP_FIXED pieces over it):
 *
 *   [ 0xff chunk ][ 0xff chunk ][ 0xff | cfg page | 0xff ][ 0xff chunk ] ...
 *
 * - One memfd of `chunk_size` bytes filled with 0xff is mapped again and again
 *   (MAP_SHARED, PROT_READ): the whole window costs one chunk of host memory however
 *   large it is, and only the chunk pages the guest touches become resident.
 * - Each `present` page gets its own private anonymous page, filled with 0xff (read-write
 *   for the VMM; the slot is KVM_MEM_READONLY, so guest writes still exit to the pci_host
 *   model, which writes the effective register values into this very page). A present page inside a
 *   chunk splits that chunk's alias into the part before and the part after it.
 * - Mappings are counted before anything is mapped, and refused when they would use a
 *   noticeable share of `vm.max_map_count` (aliasing per 4 KiB page would need 65536 for
 *   a 256 MiB window, more than the default limit of 65530).
 *
 * Everything is released on `release()` and on every error path: one munmap of the
 * reservation removes every piece, and the memfd is closed as soon as the aliases exist
 * (the mappings keep its pages alive).
 */
import type { Memslot, Plan, PresentConfigPage } from "../../plan/types.ts";
import * as host from "../host/libc.ts";
import { RuntimeError } from "../errors.ts";
import type { GuestMemory, HostMapping } from "./mod.ts";

export const PAGE = 4096;
/** The byte every absent function's config space reads as. */
export const ONES = 0xff;
/** Never use more than this share of vm.max_map_count for one window. */
const MAX_MAP_SHARE = 1 / 8;
const DEFAULT_MAX_MAP_COUNT = 65530;

/** What `createOnesAlias` built, beyond the plain HostMapping. */
export interface OnesAliasMapping extends HostMapping {
  /** Number of mappings (VMAs) this window was built from (before the kernel merges any). */
  readonly mappings: number;
  /** Live views of the present functions' config pages, by BDF, in the Plan's order. */
  readonly pages: ReadonlyMap<string, Uint8Array<ArrayBuffer>>;
  readonly chunkSize: number;
}

/** One piece of the window: an alias of the chunk at `chunkOffset`, or a private page. */
export interface Piece {
  offset: number;
  size: number;
  kind: "alias" | "page";
  /** For aliases: where in the memfd chunk this piece starts. */
  chunkOffset: number;
}

function invalid(slot: Memslot, what: string, hint: string): RuntimeError {
  return new RuntimeError("E1006", `memslot "${slot.name}": ${what}`, hint);
}

/**
 * Validates the slot's ones_alias backing and cuts its window into pieces (pure; no host
 * calls). Adjacent present pages stay separate pieces here; the count is an upper bound.
 */
export function planPieces(slot: Memslot): Piece[] {
  const b = slot.backing;
  if (b.kind !== "ones_alias") {
    throw invalid(slot, `backing is ${b.kind}, not ones_alias`, "internal error");
  }
  const chunk = b.chunk_size;
  if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk % PAGE !== 0) {
    throw invalid(
      slot,
      `chunk_size ${chunk} is not a positive multiple of 4 KiB`,
      "use a chunk of 1 or 2 MiB",
    );
  }
  if (slot.size % chunk !== 0) {
    throw invalid(
      slot,
      `size 0x${slot.size.toString(16)} is not a multiple of chunk_size 0x${chunk.toString(16)}`,
      "the ECAM window is 1 MiB per bus: use a chunk of 1 MiB, or 2 MiB for an even bus count",
    );
  }
  // Refuse before building anything: each chunk is one mapping, each present page adds at
  // most two (itself and the rest of the chunk it splits).
  const limit = maxMapCount();
  const bound = slot.size / chunk + 2 * b.present.length;
  if (bound > limit * MAX_MAP_SHARE) {
    throw invalid(
      slot,
      `${bound} mappings needed, too close to vm.max_map_count (${limit})`,
      `use a larger chunk_size (now ${chunk} bytes)`,
    );
  }
  const present = [...b.present].sort((x, y) => x.offset - y.offset);
  for (let i = 0; i < present.length; i++) {
    const p = present[i];
    if (
      !Number.isSafeInteger(p.offset) || p.offset < 0 || p.offset % PAGE !== 0 ||
      p.offset + PAGE > slot.size
    ) {
      throw invalid(
        slot,
        `present page ${p.bdf} at offset 0x${p.offset.toString(16)} is not a page inside the slot`,
        "offsets are (bus - bus_start) << 20 | dev << 15 | fn << 12",
      );
    }
    if (i > 0 && present[i - 1].offset === p.offset) {
      throw invalid(
        slot,
        `present pages ${present[i - 1].bdf} and ${p.bdf} share offset 0x${p.offset.toString(16)}`,
        "each function has its own 4 KiB page",
      );
    }
  }
  const pieces: Piece[] = [];
  let next = 0; // index into present
  for (let c = 0; c < slot.size; c += chunk) {
    let at = c;
    const end = c + chunk;
    while (next < present.length && present[next].offset < end) {
      const o = present[next].offset;
      if (o > at) pieces.push({ offset: at, size: o - at, kind: "alias", chunkOffset: at - c });
      pieces.push({ offset: o, size: PAGE, kind: "page", chunkOffset: 0 });
      at = o + PAGE;
      next++;
    }
    if (at < end) pieces.push({ offset: at, size: end - at, kind: "alias", chunkOffset: at - c });
  }
  return pieces;
}

function maxMapCount(): number {
  try {
    const v = parseInt(Deno.readTextFileSync("/proc/sys/vm/max_map_count").trim(), 10);
    return Number.isFinite(v) && v > 0 ? v : DEFAULT_MAX_MAP_COUNT;
  } catch {
    return DEFAULT_MAX_MAP_COUNT;
  }
}

/** Builds the host side of a `ones_alias` memslot (see the module comment). */
export function createOnesAlias(slot: Memslot): OnesAliasMapping {
  const pieces = planPieces(slot);
  const b = slot.backing as {
    kind: "ones_alias";
    chunk_size: number;
    present: PresentConfigPage[];
  };
  const chunk = b.chunk_size;

  let fd = -1;
  let base = 0n;
  try {
    // The chunk of all-ones: filled once through a temporary writable mapping.
    fd = host.memfdCreate("vmdesc-ecam-ones");
    host.ftruncate(fd, chunk);
    const fill = host.mmap(
      0n,
      chunk,
      host.PROT_READ | host.PROT_WRITE,
      host.MAP_SHARED,
      fd,
      0,
      "mmap ones chunk",
    );
    try {
      host.hostBytes(fill, chunk).fill(ONES);
    } finally {
      host.munmap(fill, chunk);
    }

    // Reserve the window so the MAP_FIXED pieces below never land on anything else.
    base = host.mmap(
      0n,
      slot.size,
      host.PROT_NONE,
      host.MAP_PRIVATE | host.MAP_ANONYMOUS | host.MAP_NORESERVE,
      -1,
      0,
      `reserve ${slot.name}`,
    );
    host.mmapFixedInto(
      base,
      pieces.map((p) =>
        p.kind === "alias"
          ? {
            offset: p.offset,
            size: p.size,
            prot: host.PROT_READ,
            flags: host.MAP_SHARED,
            fd,
            fileOffset: p.chunkOffset,
          }
          : {
            offset: p.offset,
            size: PAGE,
            prot: host.PROT_READ | host.PROT_WRITE,
            flags: host.MAP_PRIVATE | host.MAP_ANONYMOUS,
            fd: -1,
            fileOffset: 0,
          }
      ),
      `map the pieces of ${slot.name}`,
    );
    host.close(fd); // the aliases hold the memfd's pages from here on
    fd = -1;
  } catch (e) {
    if (base !== 0n) {
      try {
        host.munmap(base, slot.size);
      } catch { /* nothing more to release */ }
    }
    if (fd >= 0) host.close(fd);
    if (e instanceof RuntimeError) throw e;
    throw invalid(
      slot,
      `cannot build the all-ones window: ${(e as Error).message}`,
      "check the host's memory limits (ulimit -v, vm.max_map_count)",
    );
  }

  // A view of each present function's page, for the device presenting it to keep current.
  // Until one does, the page reads as all-ones, like the aliases around it.
  const pages = new Map<string, Uint8Array<ArrayBuffer>>();
  for (const p of b.present) {
    const page = host.hostBytes(base + BigInt(p.offset), PAGE);
    page.fill(ONES);
    pages.set(p.bdf, page);
  }
  let live = true;
  const addr = base;
  return {
    addr,
    size: slot.size,
    mappings: pieces.length,
    pages,
    chunkSize: chunk,
    release() {
      if (!live) return;
      live = false;
      host.munmap(addr, slot.size);
    },
  };
}

/**
 * The config-space page of each present PCI function inside the Plan's `ones_alias`
 * memslots, by BDF (lower case): private pages the VMM may write (the slot is read-only to
 * the guest, so its writes still exit). Memory only hands the pages out; the device set
 * gives each to the device that presents the function (runtime/device_set.ts), which
 * fills it and keeps it current. A page nobody claims keeps the all-ones it was mapped
 * with, like an absent function.
 */
export function shadowConfigPages(plan: Plan, memory: GuestMemory): Map<string, Uint8Array> {
  const pages = new Map<string, Uint8Array>();
  for (const slot of plan.memslots) {
    const b = slot.backing;
    if (b.kind !== "ones_alias") continue;
    for (const p of b.present) {
      const view = memory.view(slot.guest_phys + p.offset, PAGE);
      if (!view) {
        throw invalid(slot, `present page ${p.bdf} is outside guest memory`, "internal error");
      }
      pages.set(p.bdf.toLowerCase(), view);
    }
  }
  return pages;
}
