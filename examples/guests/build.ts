/**
 * Builds the freestanding test guests into examples/guests/build/ with the system gcc.
 *
 * Table-driven: each guest is its own sources plus the shared start.S + lib.c + irq.S, linked by
 * link.ld at 1 MiB with a PVH note. A guest is rebuilt only when its ELF is older than
 * any of its inputs (sources, lib.h, link.ld, this script). Outputs are written to a
 * temporary name and renamed, so a failed or concurrent build never leaves half an ELF.
 *
 *   deno run -A examples/guests/build.ts [name...]     (or: deno task guests)
 */

const DIR = new URL("./", import.meta.url);
const dir = (name: string) => decodeURIComponent(new URL(name, DIR).pathname);
export const BUILD_DIR = dir("build");

export const CFLAGS = [
  "-m32",
  "-march=i686",
  "-ffreestanding",
  "-nostdlib",
  "-fno-pic",
  "-fno-pie",
  "-no-pie",
  "-static",
  "-fno-stack-protector",
  "-fno-asynchronous-unwind-tables",
  "-mgeneral-regs-only",
  "-O2",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-Wno-builtin-declaration-mismatch",
];
const LDFLAGS = ["-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,--no-warn-rwx-segments"];
const COMMON_SOURCES = ["start.S", "lib.c", "irq.S"];
const COMMON_INPUTS = ["lib.h", "link.ld", "build.ts"];

export interface GuestSpec {
  /** What it does, for `build.ts --list`. */
  summary: string;
  /** Sources besides start.S, lib.c and irq.S. */
  sources: string[];
  /** Headers besides lib.h that it includes (a change rebuilds it). */
  inputs?: string[];
  flags?: string[];
}

export const GUESTS: Readonly<Record<string, GuestSpec>> = {
  hello: { summary: "prints a line, debug-exit 42 (status 85)", sources: ["hello.c"] },
  "pci-scan": {
    summary: "lists PCI functions by ECAM and CF8/CFC (cmdline ecam= buses=)",
    sources: ["pci_scan.c"],
  },
  smp: {
    summary: "starts APs with INIT/SIPI, prints cpus: N, debug-exit N",
    sources: ["smp.c", "smp_trampoline.S"],
  },
  "triple-fault": { summary: "empty IDT + int3: shutdown", sources: ["triple_fault.c"] },
  "rom-write": {
    summary: "writes into the read-only shadow ECAM slot (cmdline ecam=)",
    sources: ["rom_write.c"],
  },
  "unassigned-mmio": {
    summary: "reads an address with no RAM and no device (cmdline addr=)",
    sources: ["unassigned_mmio.c"],
  },
  echo: {
    summary: "reads a line from COM1 (RX interrupt, or mode=poll), prints it back",
    sources: ["echo.c", "echo_irq.S"],
  },
  reset: {
    summary: "i8042 self-test, then reset by 0xFE to 0x64 (or via=cf9: 0x06 to 0xCF9)",
    sources: ["reset.c"],
  },
  "endless-loop": { summary: "spins forever without exits", sources: ["endless_loop.c"] },
  cpuid: { summary: "prints the CPUID leaves a VMM shapes, debug-exit 0", sources: ["cpuid.c"] },
  poweroff: {
    summary: "ACPI S5 through the FADT's sleep registers (cmdline try=s3 first)",
    sources: ["poweroff.c"],
  },
  ticker: {
    summary: "prints tick N, kvmclock, TSC and spins every ms= ms (count= lines, else forever)",
    sources: ["ticker.c"],
  },
  "virtio-blk": {
    summary:
      "virtio block driver: GET_ID, read, write + read back, past the end, flush (or mode=bench)",
    sources: ["virtio_blk.c", "virtio.c", "virtio_irq.S"],
    inputs: ["virtio.h"],
  },
  "virtio-rng": {
    summary: "virtio entropy driver: reads n= bytes, checks they are not all equal",
    sources: ["virtio_rng.c", "virtio.c", "virtio_irq.S"],
    inputs: ["virtio.h"],
  },
  "virtio-console": {
    summary: "virtio console driver: prints through the port, echoes input until ^D (rx=, wait=)",
    sources: ["virtio_console.c", "virtio.c", "virtio_irq.S"],
    inputs: ["virtio.h"],
  },
  "virtio-net": {
    summary:
      "virtio network driver: answers ARP and ping (mode=echo), sends n= frames (mode=tx), counts frames (mode=rx)",
    sources: ["virtio_net.c", "virtio.c", "virtio_irq.S"],
    inputs: ["virtio.h"],
  },
  "virtio-hostile": {
    summary: "breaks one virtio rule (attack=NAME) and checks the device's documented answer",
    sources: ["virtio_hostile.c", "virtio.c", "virtio_irq.S"],
    inputs: ["virtio.h"],
  },
  fuzz: {
    summary: "seeded random attacks on ports, MMIO, config space and virtio (seed= ops=)",
    sources: ["fuzz.c", "fuzz_irq.S"],
  },
  "blk-writer": {
    summary: "writes virtio-blk sectors for ever, `w SECTOR SEQ` after each completes",
    sources: ["fuzz_writer.c", "virtio.c", "virtio_irq.S"],
    inputs: ["virtio.h"],
  },
  "bar-size": {
    summary: "sizes BARs, toggles COMMAND via ECAM (cmdline ecam= buses=)",
    sources: ["bar_size.c"],
  },
  scan: {
    summary: "hole bench: 8192 ECAM reads, 1 pass (cmdline ecam=)",
    sources: ["scan.c"],
    flags: ["-DPASSES=1"],
  },
  scan10: {
    summary: "hole bench: 8192 ECAM reads, 10 passes",
    sources: ["scan.c"],
    flags: ["-DPASSES=10"],
  },
  "scan-ram": {
    summary: "hole bench control: same loop over RAM, 1 pass",
    sources: ["scan.c"],
    flags: ["-DPASSES=1", "-DRAM_CONTROL"],
  },
  "scan-ram10": {
    summary: "hole bench control: same loop over RAM, 10 passes",
    sources: ["scan.c"],
    flags: ["-DPASSES=10", "-DRAM_CONTROL"],
  },
};

export class GuestBuildError extends Error {}

/** Path of a guest's ELF (whether or not it is built yet). */
export function guestPath(name: string): string {
  return `${BUILD_DIR}/${name}.elf`;
}

async function mtime(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function isStale(name: string, inputs: string[]): Promise<boolean> {
  const out = await mtime(guestPath(name));
  if (out === null) return true;
  for (const input of inputs) {
    const t = await mtime(dir(input));
    if (t === null) throw new GuestBuildError(`guest ${name}: missing source ${input}`);
    if (t > out) return true;
  }
  return false;
}

async function gcc(args: string[]): Promise<void> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command("gcc", {
      args,
      cwd: dir("."),
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new GuestBuildError(
        "gcc not found: the test guests are built with the system C compiler " +
          "(Debian/Ubuntu: apt-get install gcc)",
      );
    }
    throw e;
  }
  if (!result.success) {
    const text = new TextDecoder().decode(result.stderr) + new TextDecoder().decode(result.stdout);
    throw new GuestBuildError(`gcc failed (gcc ${args.join(" ")}):\n${text}`);
  }
}

/** The example disk image the virtio machines use (examples/*.vmdesc, guests/virtio.vmdesc). */
export const DISK_IMAGE = `${BUILD_DIR}/disk.img`;
/** Its size: 1 MiB, 2048 sectors. */
export const DISK_IMAGE_SIZE = 1 << 20;

/**
 * The example disk's contents: sector n filled with byte (n + 1) & 0xff, and the first 16
 * bytes "VMDESC-TEST-DISK", so a guest that prints what it read shows where it read it.
 */
export function diskImageBytes(size = DISK_IMAGE_SIZE): Uint8Array {
  const b = new Uint8Array(size);
  for (let n = 0; n * 512 < size; n++) b.fill((n + 1) & 0xff, n * 512, (n + 1) * 512);
  b.set(new TextEncoder().encode("VMDESC-TEST-DISK"));
  return b;
}

/** Writes the example disk image when it is missing (never overwrites one). */
export async function ensureDiskImage(): Promise<string> {
  await Deno.mkdir(BUILD_DIR, { recursive: true });
  if ((await mtime(DISK_IMAGE)) === null) {
    const tmp = `${DISK_IMAGE}.${Deno.pid}.tmp`;
    await Deno.writeFile(tmp, diskImageBytes());
    await Deno.rename(tmp, DISK_IMAGE);
  }
  return DISK_IMAGE;
}

/**
 * Builds the named guests (all by default) that are missing or older than their inputs,
 * and the example disk image. Returns the ELF paths by name.
 */
export async function buildGuests(names?: string[]): Promise<Map<string, string>> {
  const wanted = names ?? Object.keys(GUESTS);
  const paths = new Map<string, string>();
  await Deno.mkdir(BUILD_DIR, { recursive: true });
  await ensureDiskImage();
  for (const name of wanted) {
    const spec = GUESTS[name];
    if (!spec) {
      throw new GuestBuildError(
        `unknown guest "${name}"; known: ${Object.keys(GUESTS).join(", ")}`,
      );
    }
    const sources = [...COMMON_SOURCES, ...spec.sources];
    const out = guestPath(name);
    if (await isStale(name, [...sources, ...COMMON_INPUTS, ...(spec.inputs ?? [])])) {
      const tmp = `${out}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
      try {
        await gcc([
          ...CFLAGS,
          ...(spec.flags ?? []),
          "-T",
          "link.ld",
          ...LDFLAGS,
          "-o",
          tmp,
          ...sources,
        ]);
        await Deno.rename(tmp, out);
      } finally {
        await Deno.remove(tmp).catch(() => {});
      }
    }
    paths.set(name, out);
  }
  return paths;
}

if (import.meta.main) {
  if (Deno.args.includes("--list")) {
    for (const [name, spec] of Object.entries(GUESTS)) {
      console.log(`${name.padEnd(16)} ${spec.summary}`);
    }
    Deno.exit(0);
  }
  try {
    const built = await buildGuests(Deno.args.length > 0 ? Deno.args : undefined);
    for (const [name, path] of built) console.log(`${name.padEnd(16)} ${path}`);
  } catch (e) {
    if (e instanceof GuestBuildError) {
      console.error(`error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
