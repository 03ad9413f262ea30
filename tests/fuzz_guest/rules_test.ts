/**
 * The fuzzer's rules can fail: the image and resource checks of run.ts catch each kind of
 * damage they guard against (no KVM needed).
 */
import assert from "node:assert/strict";
import { checkImages, SECTORS } from "./run.ts";
import { leaks, resources } from "./resources.ts";
import { diskImageBytes } from "../../examples/guests/build.ts";

function record(type: number, reserved: number, lo: number, hi: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  [type, reserved, lo, hi].forEach((x, i) => v.setUint32(4 * i, x, true));
  return b;
}

function check(edit: (ro: Uint8Array, rw: Uint8Array) => void): string[] {
  const original = diskImageBytes(SECTORS * 512);
  const ro = original.slice(), rw = original.slice();
  edit(ro, rw);
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/ro`, ro);
    Deno.writeFileSync(`${dir}/rw`, rw);
    const problems: string[] = [];
    checkImages(`${dir}/ro`, `${dir}/rw`, original, problems);
    return problems;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("fuzz rules: untouched images pass, and whole sectors of records or zeros pass", () => {
  assert.deepEqual(check(() => {}), []);
  assert.deepEqual(
    check((_ro, rw) => {
      for (let o = 0; o < 512; o += 16) rw.set(record(1, 1, 1500, 0), 1500 * 512 + o);
      rw.fill(0, 1600 * 512, 1601 * 512);
      for (let o = 0; o < 512; o += 16) rw.set(record(1030, 0, 0xffff_f800, 7), 2000 * 512 + o);
      for (let o = 0; o < 512; o += 16) rw.set(record(1500, 0, 548, 1), 1700 * 512 + o);
    }),
    [],
  );
});

Deno.test("fuzz rules: each kind of damage is caught", () => {
  const one = (edit: (ro: Uint8Array, rw: Uint8Array) => void, want: RegExp) => {
    const p = check(edit);
    assert.equal(p.length, 1, p.join("\n"));
    assert.match(p[0], want);
  };
  one((ro) => ro[777] ^= 1, /read-only image changed at byte 777 \(sector 1\)/);
  one(
    (_ro, rw) => rw.fill(0, 5 * 512, 6 * 512),
    /sector 5 changed \(the fuzzer writes only from 1024\)/,
  );
  // Half a sector written: the rest still holds the original pattern.
  one(
    (_ro, rw) => {
      for (let o = 0; o < 256; o += 16) rw.set(record(0, 1, 1100, 0), 1100 * 512 + o);
    },
    /sector 1100: bytes 256\.\.271 are not a record/,
  );
  // A record naming a sector of the lower half was not written by the fuzzer.
  one(
    (_ro, rw) => {
      for (let o = 0; o < 512; o += 16) rw.set(record(1, 1, 12, 0), 1200 * 512 + o);
    },
    /sector 1200: bytes 0\.\.15 are not a record/,
  );
  // An unknown type's segment that runs past the end (1500 + 549 > 2048) is not one either.
  one(
    (_ro, rw) => {
      for (let o = 0; o < 512; o += 16) rw.set(record(1500, 0, 549, 0), 1300 * 512 + o);
    },
    /sector 1300: bytes 0\.\.15 are not a record/,
  );
});

Deno.test("fuzz rules: a leaked fd is seen", () => {
  const path = Deno.makeTempFileSync();
  const base = resources();
  const f = Deno.openSync(path);
  try {
    assert.deepEqual(leaks(base, resources()), [`fds ${base.fds} → ${base.fds + 1}`]);
  } finally {
    f.close();
    Deno.removeSync(path);
  }
  assert.deepEqual(leaks(base, resources()), []);
});
