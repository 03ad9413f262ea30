/**
 * The shadow backing on the real host: what the window reads as, how many mappings it is
 * made of, and that nothing (mapping or fd) outlives release() or a refused slot.
 * No /dev/kvm needed: this is plain mmap/memfd work.
 */
import assert from "node:assert/strict";
import type { Memslot } from "../../plan/types.ts";
import { RuntimeError } from "../errors.ts";
import { createOnesAlias, PAGE, planPieces } from "./ones_alias.ts";
import { liveMappings } from "../host/libc.ts";

const MiB = 1 << 20;

function slot(size: number, chunk: number, present: { offset: number; bdf: string }[]): Memslot {
  return {
    slot: 1,
    name: "ecam-shadow",
    guest_phys: 0xe000_0000,
    size,
    flags: ["readonly"],
    backing: { kind: "ones_alias", chunk_size: chunk, present },
  };
}

/** Mappings (lines of /proc/self/maps) that overlap [addr, addr + size). */
function mapsIn(addr: bigint, size: number): string[] {
  const end = addr + BigInt(size);
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(l);
    if (!m) return false;
    const lo = BigInt("0x" + m[1]), hi = BigInt("0x" + m[2]);
    return lo < end && hi > addr;
  });
}

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

const PRESENT = [
  { offset: 0x0_0000, bdf: "00:00.0" },
  { offset: 0x1_0000, bdf: "00:02.0" }, // inside the first chunk: splits it
  { offset: 0x10_0000 + 0x3000, bdf: "01:00.3" },
  { offset: 0xff << 20, bdf: "ff:00.0" }, // first page of the last bus
];

Deno.test("ones_alias: pieces split chunks around present pages and cover the window", () => {
  const s = slot(256 * MiB, 2 * MiB, PRESENT);
  const pieces = planPieces(s);
  // Contiguous, in order, exact cover.
  let at = 0;
  for (const p of pieces) {
    assert.equal(p.offset, at);
    at += p.size;
  }
  assert.equal(at, 256 * MiB);
  const pages = pieces.filter((p) => p.kind === "page").map((p) => p.offset);
  assert.deepEqual(pages, PRESENT.map((p) => p.offset).sort((a, b) => a - b));
  // Aliases never cross a chunk boundary and map the chunk at the right offset.
  for (const p of pieces.filter((p) => p.kind === "alias")) {
    assert.equal(p.offset % (2 * MiB), p.chunkOffset);
    assert.ok(p.chunkOffset + p.size <= 2 * MiB);
  }
  // 128 chunks; in the first, 00:00.0 at its start adds a piece (the page), 00:02.0 and
  // 01:00.3 each split the rest (+2 each); ff:00.0 splits the last chunk (+2).
  assert.equal(pieces.length, 128 + 1 + 2 + 2 + 2);
});

Deno.test("ones_alias: absent space reads 0xff, present pages are private and writable", () => {
  const fds = openFds();
  const m = createOnesAlias(slot(256 * MiB, 2 * MiB, PRESENT));
  try {
    assert.equal(m.pages.size, PRESENT.length);
    const window = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(m.addr)!, m.size),
    );
    for (const off of [PAGE, 0x8000, 2 * MiB, 0x10_0000, 255 * MiB + 0xfffff, 100 * MiB + 12]) {
      assert.equal(window[off], 0xff, `offset 0x${off.toString(16)}`);
    }
    // Present pages read all-ones until a device fills them (a page no device presents
    // stays an absent function), and keep what the VMM writes, without touching neighbours.
    const p = m.pages.get("00:02.0")!;
    assert.equal(p.length, PAGE);
    assert.ok(p.every((b) => b === 0xff));
    p.set([0xf4, 0x1a, 0x05, 0x10]);
    assert.deepEqual([...window.subarray(0x1_0000, 0x1_0004)], [0xf4, 0x1a, 0x05, 0x10]);
    assert.equal(window[0x1_0000 - 1], 0xff);
    assert.equal(window[0x1_1000], 0xff);
    // The alias pieces share one chunk: the same chunk offset in two buses is one page
    // of host memory, so what is in one shows in the other (they are read-only, so we
    // can only compare).
    assert.equal(window[3 * MiB + 0x8000], window[5 * MiB + 0x8000]);
    // Mapping count as planned (no two present pages are adjacent here, so no merging).
    assert.equal(mapsIn(m.addr, m.size).length, m.mappings);
    // The memfd is closed once the aliases exist: no fd is held by the window.
    assert.equal(openFds(), fds);
  } finally {
    m.release();
  }
  assert.deepEqual(mapsIn(m.addr, m.size), []);
  m.release(); // idempotent
  assert.equal(openFds(), fds);
});

/** Mappings of the all-ones memfd anywhere in this process. */
function onesMaps(): number {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) =>
    l.includes("vmdesc-ecam-ones")
  ).length;
}

/** Ranges the runtime mapped and has not unmapped (reservations included), as text. */
function live(): string[] {
  return liveMappings().map((r) => `${r.addr.toString(16)}-${r.end.toString(16)}`);
}

Deno.test("ones_alias: malformed backings are refused with E1006 and leave nothing behind", () => {
  const fds = openFds();
  const live0 = live();
  const bad: [string, Memslot][] = [
    ["chunk not a page multiple", slot(4 * MiB, 3000, [])],
    ["size not a chunk multiple", slot(3 * MiB, 2 * MiB, [])],
    ["misaligned present page", slot(4 * MiB, 2 * MiB, [{ offset: 0x800, bdf: "00:00.0" }])],
    ["present page outside", slot(4 * MiB, 2 * MiB, [{ offset: 4 * MiB, bdf: "04:00.0" }])],
    [
      "duplicate present page",
      slot(4 * MiB, 2 * MiB, [{ offset: 0, bdf: "00:00.0" }, { offset: 0, bdf: "00:00.1" }]),
    ],
    // 64 GiB in 4 KiB chunks: 16 M mappings, far beyond vm.max_map_count.
    ["too many mappings", slot(64 * 1024 * MiB, PAGE, [])],
    // A 128 TiB chunk passes validation but cannot be mapped: fails after memfd_create.
    ["host refuses the mapping", slot(2 ** 47, 2 ** 47, [])],
  ];
  for (const [what, s] of bad) {
    assert.throws(
      () => createOnesAlias(s),
      (e: unknown) => e instanceof RuntimeError && e.code === "E1006",
      what,
    );
  }
  assert.equal(openFds(), fds);
  assert.equal(onesMaps(), 0);
  // The window's reservation (anonymous, PROT_NONE) is released on the error paths too.
  assert.deepEqual(live(), live0);
});

Deno.test("ones_alias: 200 windows created and released keep fds and mappings flat", () => {
  const fds = openFds();
  const live0 = live();
  for (let i = 0; i < 200; i++) {
    const m = createOnesAlias(
      slot(16 * MiB, MiB, [{ offset: 0, bdf: "00:00.0" }, { offset: 0x18000, bdf: "00:03.0" }]),
    );
    m.pages.get("00:03.0")![0] = i & 0xff;
    assert.equal(onesMaps(), m.mappings - 2);
    m.release();
    assert.deepEqual(mapsIn(m.addr, m.size), []);
  }
  assert.equal(onesMaps(), 0);
  assert.equal(openFds(), fds);
  assert.deepEqual(live(), live0);
});
