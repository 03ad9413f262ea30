/**
 * A real Linux kernel (Debian's cloud kernel, see ./kernel.ts) booted on /dev/kvm from
 * examples/linux.vmdesc, both ways:
 * - PVH: `boot pvh` given the vmlinuz takes the vmlinux out and enters its PVH note;
 * - the Linux 64-bit boot protocol: the bzImage with its own decompressor (slow here).
 *
 * Each test watches the serial console for the kernel's early lines and checks them
 * against the Plan: the "Linux version" banner, the BIOS-e820 map entry for entry, and
 * the ACPI table list (our RSDP, XSDT, FACP, APIC, MCFG and DSDT, at the addresses and
 * with the lengths we built, with our OEM id). Then it stops the guest through the
 * runtime API. On this software KVM Linux stops by itself later (on `lock cmpxchg16b`),
 * so nothing after the ACPI lines is checked. Times are printed, never asserted.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { compileFile, createMachine } from "../../mod.ts";
import type { E820Entry, Plan } from "../../plan/types.ts";
import { buildAcpi } from "../../runtime/boot/acpi/mod.ts";
import { extractVmlinux, parseBzImage } from "../../runtime/boot/bzimage.ts";
import { parseElf, PT_LOAD } from "../../runtime/boot/elf.ts";
import { placeHigh } from "../../runtime/boot/placement.ts";
import { placeLinux } from "../../runtime/boot/linux.ts";
import { kernelOrSkip, skipReason } from "../skip.ts";

const HERE = new URL(".", import.meta.url).pathname;
const EXAMPLE = new URL("../../examples/linux.vmdesc", import.meta.url).pathname;
const CMDLINE = "earlyprintk=serial console=ttyS0";

const { kernel, skip } = await kernelOrSkip("real-kernel boot tests", { kvm: true });
if (kernel) console.log(`kernel: ${kernel.package} ${kernel.version} (${kernel.path})`);

// ── the kernel's e820 map, and what it should be ─────────────────────────────────────

const E820_NAMES: Record<string, E820Entry["type"]> = {
  "usable": "ram",
  "reserved": "reserved",
  "ACPI data": "acpi",
  "ACPI NVS": "nvs",
};
const TYPE_RANK: Record<E820Entry["type"], number> = { ram: 1, reserved: 2, acpi: 3, nvs: 4 };

/** "BIOS-e820: [mem 0x…-0x…] usable" lines → entries (end inclusive in the log). */
function parseE820(lines: readonly string[]): E820Entry[] {
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
function sanitize(entries: readonly E820Entry[]): E820Entry[] {
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
const PVH_ISA_HOLE: E820Entry = { addr: 0xa0000, size: 0x60000, type: "reserved" };

// ── the boot ─────────────────────────────────────────────────────────────────────────

interface Watch {
  lines: string[];
  /** Seconds since the run started at which each watched line first appeared. */
  times: Map<string, number>;
}

/**
 * Boots `plan`, collects serial lines until `done(lines)` or `limitSeconds`, then stops the
 * guest through the runtime API (AbortSignal) and returns what it saw.
 */
async function bootUntil(
  plan: Plan,
  done: (lines: readonly string[]) => boolean,
  limitSeconds: number,
): Promise<Watch & { reason: string }> {
  const lines: string[] = [];
  const times = new Map<string, number>();
  const stop = new AbortController();
  let partial = "";
  const t0 = performance.now();
  const dec = new TextDecoder();
  using m = await createMachine(plan, {
    serial: (bytes) => {
      partial += dec.decode(bytes, { stream: true });
      let i: number;
      while ((i = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, i).replace(/\r$/, "");
        partial = partial.slice(i + 1);
        lines.push(line);
        const at = (performance.now() - t0) / 1000;
        if (/Linux version/.test(line)) times.set("banner", at);
        if (/ACPI: RSDP/.test(line)) times.set("acpi", at);
        if (!stop.signal.aborted && done(lines)) stop.abort();
      }
    },
  });
  const r = await m.run({ signal: stop.signal, timeout: limitSeconds });
  return { lines, times, reason: r.reason };
}

/** Enough has been seen once the ACPI table list is complete (the "Reserving" lines follow). */
function acpiListed(lines: readonly string[]): boolean {
  return lines.some((l) => /ACPI: Reserving \w+ table memory/.test(l));
}

function checkLog(plan: Plan, w: Watch, expectedE820: E820Entry[]) {
  const log = w.lines.join("\n");
  // the banner
  assertMatch(log, /Linux version \d+\.\d+\.\d+/);
  assertMatch(log, new RegExp(`Command line: .*${CMDLINE}`));

  // the e820 map, entry for entry
  const seen = parseE820(w.lines);
  assertEquals(
    seen.map(fmtE820),
    expectedE820.map(fmtE820),
    "the kernel's BIOS-e820 lines differ from the Plan's map",
  );

  // the ACPI tables, as built from this Plan
  const oem = plan.acpi!.oem_id;
  const built = buildAcpi(plan).tables;
  for (const t of built) {
    const line = w.lines.find((l) => new RegExp(`ACPI: ${t.signature} 0x`).test(l));
    assert(line, `no "ACPI: ${t.signature}" line in the kernel log`);
    const m = line.match(/ACPI: (\w+) 0x([0-9A-F]+) ([0-9A-F]+) \(v(\d\d) ([^\s)]+)/)!;
    assert(m, `unexpected ACPI line: ${line}`);
    assertEquals(Number(`0x${m[2]}`), t.addr, `${t.signature} address`);
    assertEquals(Number(`0x${m[3]}`), t.bytes.length, `${t.signature} length`);
    assertEquals(m[5], oem, `${t.signature} OEM id`);
  }
  assertEquals(
    built.map((t) => t.signature).sort(),
    ["APIC", "DSDT", "FACP", "MCFG", "RSDP", "XSDT"],
  );
  // Linux verified our checksums (it warns about bad ones at this point).
  assert(
    !/ACPI.*[Cc]hecksum.*(incorrect|mismatch)|Incorrect checksum/.test(log),
    "checksum warnings",
  );
}

/** The kernel's "RAMDISK: [mem start-end]" line names where we put the initrd. */
function checkRamdisk(w: Watch, addr: number, size: number) {
  const end = Math.ceil((addr + size) / 4096) * 4096 - 1; // page-rounded, inclusive
  const hex10 = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;
  assert(
    w.lines.some((l) => l.includes(`RAMDISK: [mem ${hex10(addr)}-${hex10(end)}]`)),
    `no RAMDISK line for ${hex10(addr)}-${hex10(end)}:\n${
      w.lines.filter((l) => /RAMDISK/.test(l)).join("\n")
    }`,
  );
}

const INITRD_SIZE = 3 * 2 ** 20 + 123;

/** A scratch initrd (its contents do not matter: the kernel only reserves it this early). */
async function withInitrd<T>(plan: Plan, f: () => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "vmdesc-initrd-" });
  try {
    await Deno.writeFile(path, new Uint8Array(INITRD_SIZE));
    plan.boot.initrd = path;
    return await f();
  } finally {
    await Deno.remove(path);
  }
}

const fmtE820 = (e: E820Entry) =>
  `0x${e.addr.toString(16)}-0x${(e.addr + e.size - 1).toString(16)} ${e.type}`;

async function planFor(file: string, machine: string): Promise<Plan> {
  const c = await compileFile(file, { machine, kernel: kernel!.path, cmdline: CMDLINE });
  assert(c.plan, `compiling ${file}: ${JSON.stringify(c.diagnostics)}`);
  return c.plan;
}

Deno.test("e820 sanitizing matches the kernel's rules (unit check of the test's own model)", () => {
  const merged = sanitize([
    { addr: 0, size: 0x9fc00, type: "ram" },
    { addr: 0xe0000, size: 0x1000, type: "reserved" },
    { addr: 0xe1000, size: 0x1f000, type: "acpi" },
    PVH_ISA_HOLE,
  ]);
  assertEquals(merged.map(fmtE820), [
    "0x0-0x9fbff ram",
    "0xa0000-0xe0fff reserved",
    "0xe1000-0xfffff acpi",
  ]);
});

Deno.test({
  name: "linux: Debian's kernel through PVH prints its banner, our e820 map and our ACPI tables",
  ignore: skip !== null,
  sanitizeResources: false,
  async fn() {
    const plan = await planFor(`${HERE}linux_pvh.vmdesc`, "linux_pvh");
    assertEquals(plan.boot.protocol, "pvh");
    // Where the PVH loader puts an initrd: high below 4 GiB, clear of the vmlinux segments.
    const vmlinux = await extractVmlinux(
      parseBzImage(await Deno.readFile(kernel!.path), kernel!.path),
      kernel!.path,
    );
    const segments = parseElf(vmlinux, "vmlinux").segments.filter((s) => s.type === PT_LOAD)
      .map((s) => ({ base: s.paddr, end: s.paddr + s.memsz }));
    await withInitrd(plan, async () => {
      const w = await bootUntil(plan, acpiListed, 600);
      reportTimesAndStop("PVH", w);
      checkLog(plan, w, sanitize([...plan.e820, PVH_ISA_HOLE]));
      checkRamdisk(w, placeHigh(plan, INITRD_SIZE, 2 ** 32, segments), INITRD_SIZE);
    });
  },
});

Deno.test({
  name: "linux: Debian's bzImage through the 64-bit boot protocol reaches the same lines",
  ignore: skip !== null ||
    skipReason("bzImage boot test", { optOut: "VMDESC_SKIP_BZIMAGE" }) !== null,
  sanitizeResources: false,
  async fn() {
    const plan = await planFor(EXAMPLE, "linux");
    assertEquals(plan.boot.protocol, "linux");
    const bz = parseBzImage(await Deno.readFile(kernel!.path), kernel!.path);
    await withInitrd(plan, async () => {
      const placed = placeLinux(plan, bz, INITRD_SIZE).initrd!;
      const w = await bootUntil(plan, acpiListed, 900);
      reportTimesAndStop("bzImage", w);
      // The 64-bit protocol hands the map over as is: Linux prints exactly the Plan's entries.
      assertEquals(sanitize(plan.e820), plan.e820);
      checkLog(plan, w, plan.e820);
      checkRamdisk(w, placed.addr, INITRD_SIZE);
    });
  },
});

/** Prints how long the kernel took to each checkpoint; the run must have been ended by us. */
function reportTimesAndStop(path: string, w: Awaited<ReturnType<typeof bootUntil>>): void {
  const at = (k: string) => w.times.get(k)?.toFixed(1);
  console.log(`${path}: banner after ${at("banner")} s, ACPI tables after ${at("acpi")} s`);
  assertEquals(w.reason, "aborted", `the guest ended on its own: ${w.lines.slice(-5).join("\n")}`);
}
