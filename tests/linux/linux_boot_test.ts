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
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { compileFile, createMachine } from "../../mod.ts";
import type { Plan } from "../../plan/types.ts";
import { extractVmlinux, parseBzImage } from "../../runtime/boot/bzimage.ts";
import { parseElf, PT_LOAD } from "../../runtime/boot/elf.ts";
import { placeHigh } from "../../runtime/boot/placement.ts";
import { placeLinux } from "../../runtime/boot/linux.ts";
import { kernelOrSkip, skipReason } from "../skip.ts";
import { checkLog, fmtE820, PVH_ISA_HOLE, sanitize, serialLines } from "./kernel_log.ts";

const HERE = new URL(".", import.meta.url).pathname;
const EXAMPLE = new URL("../../examples/linux.vmdesc", import.meta.url).pathname;
const CMDLINE = "earlyprintk=serial console=ttyS0";

const { kernel, skip } = await kernelOrSkip("real-kernel boot tests", { kvm: true });
if (kernel) console.log(`kernel: ${kernel.package} ${kernel.version} (${kernel.path})`);

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
  const t0 = performance.now();
  using m = await createMachine(plan, {
    serial: serialLines((line) => {
      lines.push(line);
      const at = (performance.now() - t0) / 1000;
      if (/Linux version/.test(line)) times.set("banner", at);
      if (/ACPI: RSDP/.test(line)) times.set("acpi", at);
      if (!stop.signal.aborted && done(lines)) stop.abort();
    }).write,
  });
  const r = await m.run({ signal: stop.signal, timeout: limitSeconds });
  return { lines, times, reason: r.reason };
}

/** Enough has been seen once the ACPI table list is complete (the "Reserving" lines follow). */
function acpiListed(lines: readonly string[]): boolean {
  return lines.some((l) => /ACPI: Reserving \w+ table memory/.test(l));
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
      checkLog(plan, w.lines, CMDLINE, sanitize([...plan.e820, PVH_ISA_HOLE]));
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
      checkLog(plan, w.lines, CMDLINE, plan.e820);
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
