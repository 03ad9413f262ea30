/**
 * Reading a Linux kernel's boot log against the Plan it was booted from: the BIOS-e820
 * lines, the ACPI table list, the banner. Shared by the Linux boot tests.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import type { E820Entry, Plan } from "../../plan/types.ts";
import { buildAcpi } from "../../runtime/boot/acpi/mod.ts";

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const E820_NAMES: Record<string, E820Entry["type"]> = {
  "usable": "ram",
  "reserved": "reserved",
  "ACPI data": "acpi",
  "ACPI NVS": "nvs",
};
const TYPE_RANK: Record<E820Entry["type"], number> = { ram: 1, reserved: 2, acpi: 3, nvs: 4 };

/**
 * The guest's serial output cut into lines (without "\r\n"): `write` is the machine's
 * serial callback and hands each complete line to `onLine` as it arrives; `rest` is what
 * came after the last newline.
 */
export function serialLines(
  onLine: (line: string) => void,
): { write: (bytes: Uint8Array) => void; rest: () => string } {
  const dec = new TextDecoder();
  let partial = "";
  return {
    write(bytes) {
      partial += dec.decode(bytes, { stream: true });
      let i: number;
      while ((i = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, i).replace(/\r$/, "");
        partial = partial.slice(i + 1);
        onLine(line);
      }
    },
    rest: () => partial,
  };
}

/** "BIOS-e820: [mem 0x…-0x…] usable" lines → entries (end inclusive in the log). */
export function parseE820(lines: readonly string[]): E820Entry[] {
  const out: E820Entry[] = [];
  for (const l of lines) {
    const m = l.match(/BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (.+?)\s*$/);
    if (!m) continue;
    const addr = Number(BigInt(m[1]));
    const type = E820_NAMES[m[3]];
    assert(type, `unknown e820 type in "${l}"`);
    out.push({ addr, size: Number(BigInt(m[2])) - addr + 1, type });
  }
  return out;
}

/**
 * What Linux does to a firmware map before printing it (e820__update_table): sort,
 * give overlapping parts the higher-numbered type, and merge neighbours of one type.
 */
export function sanitize(entries: readonly E820Entry[]): E820Entry[] {
  const cuts = [...new Set(entries.flatMap((e) => [e.addr, e.addr + e.size]))].sort((a, b) =>
    a - b
  );
  const out: E820Entry[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [lo, hi] = [cuts[i], cuts[i + 1]];
    let type: E820Entry["type"] | null = null;
    for (const e of entries) {
      if (e.addr <= lo && e.addr + e.size >= hi && (!type || TYPE_RANK[e.type] > TYPE_RANK[type])) {
        type = e.type;
      }
    }
    if (type === null) continue;
    const last = out[out.length - 1];
    if (last && last.type === type && last.addr + last.size === lo) last.size += hi - lo;
    else out.push({ addr: lo, size: hi - lo, type });
  }
  return out;
}

/** Linux's PVH entry adds the ISA hole 0xA0000-0xFFFFF as reserved (init_pvh_bootparams). */
export const PVH_ISA_HOLE: E820Entry = { addr: 0xa0000, size: 0x60000, type: "reserved" };

/**
 * The checks every boot makes of the kernel's early log against the Plan: the banner and
 * command line, the BIOS-e820 map entry for entry (`expectedE820`: what the kernel should
 * print, see sanitize()), and the ACPI table list (each of our tables at the address and
 * with the length we built, with our OEM id; no checksum complaints).
 */
export function checkLog(
  plan: Plan,
  lines: readonly string[],
  cmdline: string,
  expectedE820: E820Entry[],
) {
  const log = lines.join("\n");
  // the banner
  assertMatch(log, /Linux version \d+\.\d+\.\d+/);
  assertMatch(log, new RegExp(`Command line: .*${escapeRegExp(cmdline)}`));

  // the e820 map, entry for entry
  const seen = parseE820(lines);
  assertEquals(
    seen.map(fmtE820),
    expectedE820.map(fmtE820),
    "the kernel's BIOS-e820 lines differ from the Plan's map",
  );

  // the ACPI tables, as built from this Plan
  const oem = plan.acpi!.oem_id;
  const built = buildAcpi(plan).tables;
  for (const t of built) {
    const line = lines.find((l) => new RegExp(`ACPI: ${t.signature} 0x`).test(l));
    assert(line, `no "ACPI: ${t.signature}" line in the kernel log`);
    const m = line.match(/ACPI: (\w+) 0x([0-9A-F]+) ([0-9A-F]+) \(v(\d\d) ([^\s)]+)/)!;
    assert(m, `unexpected ACPI line: ${line}`);
    assertEquals(Number(`0x${m[2]}`), t.addr, `${t.signature} address`);
    assertEquals(Number(`0x${m[3]}`), t.bytes.length, `${t.signature} length`);
    assertEquals(m[5], oem, `${t.signature} OEM id`);
  }
  const expected = ["APIC", "DSDT", "FACP", "RSDP", "XSDT"];
  if (plan.hole?.ecam) expected.push("MCFG");
  assertEquals(built.map((t) => t.signature).sort(), expected.sort());
  // Linux verified our checksums (it warns about bad ones at this point).
  assert(
    !/ACPI.*[Cc]hecksum.*(incorrect|mismatch)|Incorrect checksum/.test(log),
    "checksum warnings",
  );
}

export const fmtE820 = (e: E820Entry) =>
  `0x${e.addr.toString(16)}-0x${(e.addr + e.size - 1).toString(16)} ${e.type}`;
