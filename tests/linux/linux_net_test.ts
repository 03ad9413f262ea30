/**
 * Linux drives vmdesc's virtio-net on a TAP device: Debian's cloud kernel loads virtio_pci or
 * virtio_mmio and virtio_net (with net_failover and failover, modules of its own package kept
 * by tests/linux/kernel.ts) from a busybox initramfs (examples/linux/initramfs/build.ts with
 * ./net/init as its init). The init gives eth0 the guest's address and pings the host side of
 * the TAP device (busybox ping); then the host side pings the guest and, when it is done, says
 * so on the guest's console; the init reports what the kernel counted and powers off.
 *
 * Each case runs in a network namespace the test makes (tests/net/netns.ts: never the host's
 * own namespaces or addresses), with a persistent TAP device holding the host's address, and
 * runs `vmdesc boot --plan` inside it, so the machine's TAP device is that one. Over the modern
 * PCI transport with MSI-X, and over virtio-mmio as the ACPI DSDT describes it
 * (tests/linux/linux_net.vmdesc).
 *
 * These need a KVM that runs Linux that far (tests/skip.ts, need `linux`); on a host
 * without one `.ci/run` runs them inside the nested test bed:
 *   deno task nested --tcg-threads multi --include .cache/kernel -- \
 *     deno test --no-check -A tests/linux/linux_net_test.ts
 * Times are printed, never asserted.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { compileFile } from "../../mod.ts";
import { moduleInitramfs, type Setup } from "./module_initramfs.ts";
import { type KernelModule, NET_MODULES, VIRTIO_TRANSPORT_MODULES } from "./kernel.ts";
import { GUEST_IP, HOST_IP, NetNs, TAP } from "../net/netns.ts";

const HERE = decodeURIComponent(new URL("./", import.meta.url).pathname);
const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const MACHINES = `${HERE}linux_net.vmdesc`;
/** Far more than a run takes inside the test bed (~30 s); only a hung guest meets it. */
const TIMEOUT_S = 300;
/** Pings each way (tests/linux/net/init sends 3). */
const GUEST_PINGS = 3;
const HOST_PINGS = 5;
const enc = new TextEncoder();

/** The transports and virtio_net, each after the modules it needs (`depends=` of the .ko). */
const MODULES: readonly KernelModule[] = [...VIRTIO_TRANSPORT_MODULES, ...NET_MODULES];

/** The initramfs: busybox, ./net/init, the modules and the order to load them. */
function setup() {
  return moduleInitramfs({
    what: "Linux virtio-net",
    needs: { tools: ["ip", "ping"] },
    init: `${HERE}net/init`,
    modules: MODULES,
    prefix: "vmdesc-linux-net-",
  });
}

const ready = await setup();
const skip = "skip" in ready ? ready.skip : null;

/** The machine's Plan with the test's kernel and initramfs, written where vmdesc reads it. */
async function planFile(name: string, s: Setup): Promise<string> {
  const c = await compileFile(MACHINES, { machine: name, kernel: s.kernel });
  assert(c.plan, `compiling ${MACHINES}: ${JSON.stringify(c.diagnostics)}`);
  c.plan.boot.initrd = s.initramfs;
  const path = `${s.dir}/${name}.plan.json`;
  await Deno.writeTextFile(path, JSON.stringify(c.plan));
  return path;
}

/**
 * `vmdesc boot` inside the namespace, its serial output read as it comes (the test answers
 * the guest's "ready"), its stdin the guest's console.
 */
class Guest implements AsyncDisposable {
  output = "";
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  readonly #timer: ReturnType<typeof setTimeout>;
  #ended = false;
  #changed: () => void = () => {};

  constructor(ns: NetNs, args: string[]) {
    const child = this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns.name,
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}cli/vmdesc.ts`,
        ...args,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = child.stdin.getWriter();
    this.#timer = setTimeout(() => this.kill(), TIMEOUT_S * 1000);
    const dec = new TextDecoder();
    const out = (async () => {
      for await (const chunk of child.stdout) {
        this.output += dec.decode(chunk, { stream: true });
        this.#changed();
      }
    })();
    const err = (async () => {
      for await (const chunk of child.stderr) this.stderr += dec.decode(chunk);
    })();
    this.#reading = Promise.all([out, err]).then(() => {
      this.#ended = true;
      this.#changed();
    });
  }

  /** The guest's "vmdesc-net: WHAT VALUE" lines. */
  reports(): string[] {
    return this.output.split(/\r?\n/).filter((l) => l.startsWith("vmdesc-net: "));
  }

  /** Resolves when the guest has printed `line` (a whole report line); false at its exit. */
  async waitFor(line: string): Promise<boolean> {
    while (!this.reports().includes(line)) {
      if (this.#ended) return false;
      await new Promise<void>((r) => this.#changed = r);
    }
    return true;
  }

  /** A line typed on the guest's console (its first serial port). */
  async type(line: string): Promise<void> {
    await this.#stdin.write(enc.encode(`${line}\n`));
  }

  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* gone */ }
  }

  /** vmdesc's exit status, once its output is read. */
  async status(): Promise<number> {
    const { code } = await this.#child.status;
    await this.#reading;
    clearTimeout(this.#timer);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill();
    await this.#stdin.close().catch(() => {});
    await this.status();
  }
}

/**
 * Each case: its machine, the guest's MAC, and the transport device under the virtio device
 * (the PCI function, or the platform device Linux made from the DSDT's LNRO0005 entry).
 */
const CASES = [
  {
    name: "pci, MSI-X",
    machine: "linux_net_pci",
    mac: "52:54:00:12:34:56",
    on: "0000:00:03.0",
    // A vector for the receive queue (and one each for the transmit queue and config).
    rxIrq: /^irq \d+: [1-9]\d* PCI-MSI \d+-edge virtio\d+-input\.0$/,
  },
  {
    name: "mmio",
    machine: "linux_net_mmio",
    mac: "52:54:00:12:34:57",
    on: "LNRO0005:00",
    // One IOAPIC line for the device, edge-triggered as the DSDT describes it.
    rxIrq: /^irq \d+: [1-9]\d* IO-APIC \d+-edge virtio\d+$/,
  },
] as const;

for (const c of CASES) {
  Deno.test({
    name: `linux virtio-net (${c.name}): the kernel's virtio_net brings eth0 up on the TAP ` +
      "device; the guest pings the host side and the host side pings the guest",
    ignore: skip !== null,
    async fn() {
      const s = ready as Setup;
      const plan = await planFile(c.machine, s);
      const stats = `${s.dir}/${c.machine}.stats.json`;
      await using ns = await NetNs.create();
      await ns.tap(TAP, `${HOST_IP}/24`);
      const t0 = performance.now();
      await using guest = new Guest(ns, ["boot", "--plan", plan, "--stats-json", stats]);
      const up = await guest.waitFor("vmdesc-net: ready");
      const upSeconds = (performance.now() - t0) / 1000;
      const ping = up ? await ns.ping(HOST_PINGS, { to: GUEST_IP }) : null;
      if (up) await guest.type("bye");
      const code = await guest.status();
      const seconds = (performance.now() - t0) / 1000;
      const reports = guest.reports();
      const tail = guest.output.split("\n").slice(-40).join("\n") + guest.stderr;
      console.log(
        `${c.name}: ready after ${upSeconds.toFixed(1)} s, off after ${seconds.toFixed(1)} s\n` +
          reports.filter((l) => !l.startsWith("vmdesc-net: log ")).join("\n"),
      );
      assert(up, `the guest never said it was ready:\n${tail}`);
      const report = (what: string): string => {
        const line = reports.find((l) => l.startsWith(`vmdesc-net: ${what} `));
        assert(line !== undefined, `init reported no "${what}":\n${tail}`);
        return line.slice(`vmdesc-net: ${what} `.length).trim();
      };

      // Every module loaded, none refused.
      const loaded = report("modules").split(" ");
      for (const m of MODULES) assert(loaded.includes(m), loaded.join(" "));
      assert(!reports.some((l) => l.includes("insmod")), reports.join("\n"));
      // eth0: the Plan's MAC, virtio_net on the transport device, MRG_RXBUF (feature bit 15)
      // negotiated, link up.
      assertEquals(report("eth0 mac"), c.mac);
      assertEquals(report("eth0 driver"), `virtio_net on ${c.on}`);
      assertEquals(report("eth0 features")[15], "1", report("eth0 features"));
      assertEquals(report("eth0 operstate"), "up");
      // Both ways: the guest's pings answered by the namespace's end of the TAP device, and
      // the host side's answered by the guest's kernel.
      assertEquals(report("ping host"), `${GUEST_PINGS} packets received`);
      assertEquals(ping!.received, HOST_PINGS, ping!.output);
      assertEquals(report("host said"), "bye");
      const icmp = report("icmp").split(" ");
      assertEquals(icmp[1], icmp[3], `every echo request answered: ${icmp.join(" ")}`);
      assert(Number(icmp[1]) >= HOST_PINGS, icmp.join(" "));
      const irqs = reports.filter((l) => l.startsWith("vmdesc-net: irq "))
        .map((l) => l.slice("vmdesc-net: ".length));
      assert(irqs.some((l) => c.rxIrq.test(l)), `no interrupts as expected:\n${irqs.join("\n")}`);
      assertEquals(report("eth0 rx_errors"), "0");
      assertEquals(report("eth0 tx_errors"), "0");

      // vmdesc: the guest powered off (status 0); its device counted the frames both ways,
      // dropped none and met no malformed frame; no warning on stderr.
      assertEquals(code, 0, tail);
      const j = JSON.parse(await Deno.readTextFile(stats));
      assertEquals([j.reason, j.exit_status], ["poweroff", 0]);
      const net = j.devices.find((d: { kind: string }) => d.kind === "virtio_net").model;
      assert(net.rx_frames >= GUEST_PINGS + HOST_PINGS, JSON.stringify(net));
      assert(net.tx_frames >= GUEST_PINGS + HOST_PINGS, JSON.stringify(net));
      for (const k of ["rx_dropped", "rx_read_errors", "tx_malformed", "tx_errors"]) {
        assertEquals(net[k], 0, `${k}: ${JSON.stringify(net)}`);
      }
      assertEquals(Object.keys(net).filter((k) => k.startsWith("fault_")), [], JSON.stringify(net));
      assert(!/warning/i.test(guest.stderr), guest.stderr);
    },
  });
}

Deno.test({
  name: "linux virtio-net: clean up",
  ignore: skip !== null,
  async fn() {
    await Deno.remove((ready as Setup).dir, { recursive: true });
  },
});
