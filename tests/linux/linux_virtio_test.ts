/**
 * Linux drives vmdesc's virtio devices: Debian's cloud kernel loads virtio_pci or
 * virtio_mmio, virtio_blk, virtio-rng and virtio_console (modules of its own package, kept
 * by tests/linux/kernel.ts) from a busybox initramfs (examples/linux/initramfs/build.ts
 * with ./virtio/init as its init). The init reports what a user would look at: /dev/vda's
 * size, first bytes, checksum, serial and driver, then writes the start of sector 7 (and
 * asks for a FLUSH), reads /dev/hwrng, writes a line to /dev/hvc0 and reads back the line
 * the test types into the console once it has seen that one, and powers off. The test
 * checks each report against the image it made, then finds the sector in the image file
 * and nothing else changed, and finds the console's line in the console's own output (kept
 * apart from the serial port's, which carries the reports). Over the modern
 * PCI transport with MSI-X, the same with INTx (`pci=nomsi`), and over virtio-mmio as the
 * ACPI DSDT describes it (tests/linux/linux_virtio.vmdesc).
 *
 * These need a KVM that runs Linux that far (tests/skip.ts, need `linux`); on a host
 * without one `.ci/run` runs them inside the nested test bed:
 *   deno task nested --tcg-threads multi --include .cache/kernel -- \
 *     deno test --no-check -A tests/linux/linux_virtio_test.ts
 * Times are printed, never asserted.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { createHash } from "node:crypto";
import { compileFile, createMachine } from "../../mod.ts";
import type { Plan } from "../../plan/types.ts";
import { moduleInitramfs, type Setup } from "./module_initramfs.ts";
import { VIRTIO_MODULES } from "./kernel.ts";

const HERE = decodeURIComponent(new URL("./", import.meta.url).pathname);
const MACHINES = `${HERE}linux_virtio.vmdesc`;
/** Far more than a run takes inside the test bed (~15 s); only a hung guest meets it. */
const TIMEOUT_S = 300;
const IMAGE_SIZE = 8 << 20;
const SECTOR = 512;
const HEAD = "VMDESC-LINUX-DSK";
const MARK = "vmdesc linux was here";
/** What the init writes to /dev/hvc0 (the tty turns its newline into CR LF). */
const CONSOLE_LINE = "hello from Linux over hvc0";
/** A line of printable bytes a tty passes unchanged, different on every run. */
const typedLine = () =>
  `typed by the test ${crypto.randomUUID()} ${"0123456789+-=_.,:;".repeat(6)}`;
const enc = new TextEncoder();
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/** The initramfs: busybox, ./virtio/init, the virtio modules and the order to load them. */
function setup() {
  return moduleInitramfs({
    what: "Linux virtio",
    init: `${HERE}virtio/init`,
    modules: VIRTIO_MODULES,
    prefix: "vmdesc-linux-virtio-",
  });
}

const ready = await setup();
const skip = "skip" in ready ? ready.skip : null;

/** An image whose sectors differ (sector n is filled with n + 1), starting with HEAD. */
function makeImage(dir: string): { path: string; bytes: Uint8Array } {
  const bytes = new Uint8Array(IMAGE_SIZE);
  for (let n = 0; n * SECTOR < IMAGE_SIZE; n++) {
    bytes.fill((n + 1) & 0xff, n * SECTOR, (n + 1) * SECTOR);
  }
  bytes.set(enc.encode(HEAD));
  const path = `${dir}/disk-${crypto.randomUUID()}.img`;
  Deno.writeFileSync(path, bytes);
  return { path, bytes };
}

async function machinePlan(name: string, s: Setup, image: string): Promise<Plan> {
  const c = await compileFile(MACHINES, { machine: name, kernel: s.kernel });
  assert(c.plan, `compiling ${MACHINES}: ${JSON.stringify(c.diagnostics)}`);
  const plan = c.plan;
  plan.boot.initrd = s.initramfs;
  for (const e of [...plan.devices, ...plan.pci]) {
    if (e.virtio?.backing.kind === "file") e.virtio.backing.path = image;
  }
  return plan;
}

/**
 * Each case: its machine, where Linux finds the two devices, how they
 * interrupt. `pci=nomsi` keeps Linux off MSI-X, so the PCI functions raise INTx through
 * the IOAPIC pins the DSDT's _PRT routes them to.
 */
const CASES = [
  // `console`: the id the console's output comes under (a PCI function's is its BDF).
  {
    name: "pci, MSI-X",
    machine: "linux_virtio_pci",
    cmdline: null,
    on: "0000:00:03.0",
    rngOn: "0000:00:04.0",
    consoleOn: "0000:00:05.0",
    console: "00:05.0",
    interrupts: "msix",
  },
  {
    name: "pci, INTx",
    machine: "linux_virtio_pci",
    cmdline: "console=ttyS0 quiet pci=nomsi",
    on: "0000:00:03.0",
    rngOn: "0000:00:04.0",
    consoleOn: "0000:00:05.0",
    console: "00:05.0",
    interrupts: "intx",
  },
  {
    name: "mmio",
    machine: "linux_virtio_mmio",
    cmdline: null,
    // The platform devices Linux made from the DSDT's LNRO0005 entries.
    on: "LNRO0005:00",
    rngOn: "LNRO0005:01",
    consoleOn: "LNRO0005:02",
    console: "con",
    interrupts: "line",
  },
] as const;

for (const c of CASES) {
  Deno.test({
    name: `linux virtio (${c.name}): the kernel's virtio_blk, virtio-rng and ` +
      "virtio_console drive the disk, the entropy source and the console, then power off",
    ignore: skip !== null,
    sanitizeResources: false,
    async fn() {
      const s = ready as Setup;
      const image = makeImage(s.dir);
      const plan = await machinePlan(c.machine, s, image.path);
      if (c.cmdline !== null) plan.boot.cmdline = c.cmdline;
      // Each console's output by id: the serial port's (the init's reports) and the virtio
      // console's, kept apart. The console gets stdin (`input stdin`): the line is typed
      // once the guest's own line came out of the console, when the tty is open and waiting.
      const decoders = new Map<string, TextDecoder>();
      const outputs = new Map<string, string>();
      const typed = typedLine();
      let type!: ReadableStreamDefaultController<Uint8Array>;
      const stdin = new ReadableStream<Uint8Array>({ start: (ctl) => void (type = ctl) });
      let sent = false;
      const warnings: string[] = [];
      const t0 = performance.now();
      const r = await (async () => {
        using m = await createMachine(plan, {
          serial: (b, id) => {
            if (!decoders.has(id)) decoders.set(id, new TextDecoder());
            outputs.set(
              id,
              (outputs.get(id) ?? "") + decoders.get(id)!.decode(b, { stream: true }),
            );
            if (!sent && id === c.console && /\n/.test(outputs.get(id)!)) {
              sent = true;
              type.enqueue(enc.encode(`${typed}\n`));
            }
          },
          stdin,
          warn: (w) => warnings.push(w),
        });
        return await m.run({ timeout: TIMEOUT_S });
      })();
      const out = outputs.get("com1") ?? "";
      const consoleOut = outputs.get(c.console) ?? "";
      const seconds = (performance.now() - t0) / 1000;
      const reports = out.split(/\r?\n/).filter((l) => l.startsWith("vmdesc-virtio: "));
      console.log(
        `${c.name}: ${seconds.toFixed(1)} s; ${r.message}\n${reports.join("\n")}\n` +
          `console output: ${JSON.stringify(consoleOut)}`,
      );
      const tail = out.split("\n").slice(-30).join("\n");
      const report = (what: string): string => {
        const line = reports.find((l) => l.startsWith(`vmdesc-virtio: ${what} `));
        assert(line !== undefined, `init reported no "${what}":\n${tail}`);
        return line.slice(`vmdesc-virtio: ${what} `.length).trim();
      };

      // Every module loaded (/proc/modules spells virtio-rng virtio_rng).
      const loaded = report("modules").split(" ");
      for (const m of VIRTIO_MODULES) {
        assert(loaded.includes(m.replace("-", "_")), loaded.join(" "));
      }
      assert(!reports.some((l) => l.includes("insmod")), reports.join("\n"));
      // The disk as the guest sees it: the image's size, bytes, serial; read-write.
      assertEquals(report("vda bytes"), String(IMAGE_SIZE));
      assertEquals(report("vda starts"), hex(enc.encode(HEAD)));
      assertEquals(report("vda md5"), createHash("md5").update(image.bytes).digest("hex"));
      assertEquals(report("vda serial"), "vmdesc-linux");
      assertEquals(report("vda read-only"), "0");
      // The transport device under the virtio device.
      assertEquals(report("vda driver"), `virtio_blk on ${c.on}`);
      assert(reports.includes("vmdesc-virtio: wrote sector 7"), reports.join("\n"));
      // The entropy source: the kernel's hwrng picked the virtio one, whose bytes vary.
      assertMatch(report("hwrng"), /^virtio_rng\.\d+$/);
      const random = report("hwrng bytes");
      assertEquals(random.length, 64, random);
      assert(new Set(random.match(/../g)).size > 8, `hwrng bytes look constant: ${random}`);
      const [rngOn, rngVirtio] = report("hwrng on").split(" ");
      assertEquals(rngOn, c.rngOn);

      // The console: virtio_console bound on the expected transport device, the line the
      // init wrote to /dev/hvc0 is all of the console's output (nothing of it reached the
      // serial port), and the line the test typed came back whole.
      const [consoleOn, consoleVirtio] = report("hvc0 on").split(" ");
      assertEquals(consoleOn, c.consoleOn);
      assert(!reports.some((l) => /no \/dev\/hvc0|does not open|stty failed/.test(l)), tail);
      assert(reports.includes("vmdesc-virtio: hvc0 wrote"), reports.join("\n"));
      assertEquals(consoleOut, `${CONSOLE_LINE}\r\n`);
      assert(!out.includes(CONSOLE_LINE), "the console's line reached the serial port");
      assert(sent, "the console's line never came out, so nothing was typed");
      assertEquals(report("hvc0 read"), `${typed.length} ${typed}`);

      // Interrupts, as /proc/interrupts counted them: with MSI-X a vector for each device's
      // queue (and MSI-X, not MSI, for the disk's function); otherwise the IOAPIC line the
      // Plan gave each device or function, level-triggered for PCI INTx (fasteoi), edge for
      // virtio-mmio (as the DSDT describes it).
      const irqs = reports.filter((l) => l.startsWith("vmdesc-virtio: irq "))
        .map((l) => l.split(" ").slice(2));
      const fired = (kind: string, name: RegExp) =>
        irqs.filter((f) => f[2] === kind && name.test(f.at(-1)!) && Number(f[1]) > 0);
      if (c.interrupts === "msix") {
        assertEquals(report("vda msi"), "msix msix");
        assertEquals(fired("PCI-MSI", /^virtio\d+-req\.0$/).length, 1, irqs.join("\n"));
        const vector = (virtio: string, queue: string) => new RegExp(`^${virtio}-${queue}$`);
        assertEquals(fired("PCI-MSI", vector(rngVirtio, "input")).length, 1, irqs.join("\n"));
        // The typed line reached the reading tty through the console's receive queue.
        assertEquals(fired("PCI-MSI", vector(consoleVirtio, "input")).length, 1, irqs.join("\n"));
      } else {
        assertEquals(report("vda msi"), "");
        const lines = fired("IO-APIC", /^virtio\d+$/).map((f) => f[3]).sort();
        const trigger = c.interrupts === "intx" ? "fasteoi" : "edge";
        const gsis = [...plan.devices, ...plan.pci].filter((d) => d.virtio).map((d) => d.irq);
        assertEquals(lines, gsis.map((g) => `${g}-${trigger}`).sort(), irqs.join("\n"));
      }

      // What the devices counted: a FLUSH after the write, GET_ID for the serial, random
      // bytes, the console's line out and the typed line in (none held or dropped); on PCI
      // each interrupt a message or an INTx assertion; no guest fault anywhere.
      const model = (kind: string) => r.stats.devices.find((d) => d.kind === kind)!.model;
      const blk = model("virtio_blk");
      const rng = model("virtio_rng");
      const con = model("virtio_console");
      assert(blk.writes >= 1 && blk.flushes >= 1 && blk.get_ids >= 1, JSON.stringify(blk));
      assert(rng.bytes >= 32, JSON.stringify(rng));
      assertEquals(
        [con.tx_bytes, con.rx_bytes, con.rx_held, con.rx_dropped],
        [CONSOLE_LINE.length + 2, typed.length + 1, 0, 0],
        JSON.stringify(con),
      );
      for (const m of c.interrupts === "line" ? [] : [blk, rng, con]) {
        const [used, unused] = c.interrupts === "msix"
          ? [m.msi, m.intx_asserts]
          : [m.intx_asserts, m.msi];
        assert(used > 0 && unused === 0, JSON.stringify(m));
      }
      for (const m of [blk, rng, con]) {
        assertEquals(Object.keys(m).filter((k) => k.startsWith("fault_")), [], JSON.stringify(m));
      }
      assertEquals([r.reason, r.exitStatus], ["poweroff", 0], `${r.message}\n${tail}`);
      assertEquals(warnings, []);

      // The image: the start of sector 7 holds the mark, nothing else changed, same size.
      const now = Deno.readFileSync(image.path);
      assertEquals(now.length, IMAGE_SIZE);
      const want = image.bytes.slice();
      want.set(enc.encode(MARK), 7 * SECTOR);
      const differs = now.findIndex((b, i) => b !== want[i]);
      assertEquals(differs, -1, `the image differs at byte ${differs}`);
      Deno.removeSync(image.path);
    },
  });
}

Deno.test({
  name: "linux virtio: clean up",
  ignore: skip !== null,
  async fn() {
    await Deno.remove((ready as Setup).dir, { recursive: true });
  },
});
