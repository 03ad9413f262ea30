/**
 * Network benchmark: frames per second through a virtio network device on a TAP device,
 * vmdesc against QEMU microvm, the same guest ELF (examples/guests/virtio_net.c, polling
 * its queues) on the same 128 MiB, 1 vCPU, in a network namespace made for the run.
 *
 *   deno task bench net [-- --runs R --n N --no-qemu]
 *
 * - guest → host: the guest sends N 60-byte frames (mode=tx, 32 per notify) and times them
 *   with its TSC until the device has taken the last one; the host counts them on the TAP
 *   device (rx_packets), which must be exactly N.
 * - host → guest: the guest (mode=rx wait=…) holds its receive buffers back while
 *   bench/net/flood.c queues N 60-byte frames on the TAP device (its queue made longer than
 *   N) through a packet socket; then the guest times the N frames from the first. So the
 *   VMM's receive path is measured, not the sender; a frame dropped on the TAP fails the run.
 *
 * Per transport (modern PCI, virtio-mmio) and direction, runs alternate between the VMMs
 * in a shuffled order; frames/s best and median. Writes bench/results/net.json.
 */
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import { vmdescArgv } from "../vmdesc_command.ts";
import { prng } from "../../tests/fuzz/mutate.ts";
import { microvm, QEMU } from "../../tests/qemu.ts";
import { NET_VMDESC, NetNs, type Started, TAP } from "../../tests/net/netns.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

const args = Deno.args;
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const RUNS = opt("runs", 5);
const N = opt("n", 20000);
const WITH_QEMU = !args.includes("--no-qemu") && QEMU !== null;
/** How long (million TSC cycles) the receiving guest waits for the host to queue N frames. */
const WAIT_MCYCLES = opt("wait", 3000);

/** QEMU with KVM, as bench/virtio runs it: both VMMs on the same accelerator. */
const QEMU_ACCEL = ["-enable-kvm", "-cpu", "host,arch-capabilities=off"];

type Vmm = "vmdesc" | "qemu";
type Direction = "guest_to_host" | "host_to_guest";
const TRANSPORTS = [
  {
    name: "pci",
    machine: "net_pci",
    qemu: { pcie: true, device: "virtio-net-pci,disable-legacy=on" },
  },
  { name: "mmio", machine: "net_mmio", qemu: { pcie: false, device: "virtio-net-device" } },
] as const;
type Transport = (typeof TRANSPORTS)[number];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function tscKhz(tmp: string): Promise<number> {
  const bin = `${tmp}/tsc`;
  await must("gcc", ["-O2", "-o", bin, ROOT + "bench/virtio/tsc.c"]);
  const khz: number[] = [];
  for (let i = 0; i < 3; i++) {
    const o = await new Deno.Command(bin, { stdout: "piped" }).output();
    khz.push(Number(new TextDecoder().decode(o.stdout).trim()));
  }
  return median(khz);
}

async function must(cmd: string, argv: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args: argv, stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${argv.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
}

function start(ns: NetNs, vmm: Vmm, t: Transport, cmdline: string): Started {
  const elf = guestPath("virtio-net");
  if (vmm === "vmdesc") {
    return ns.start(
      vmdescArgv(Deno.execPath(), [
        "boot",
        NET_VMDESC,
        "--machine",
        t.machine,
        "--kernel",
        elf,
        "--cmdline",
        cmdline,
      ]),
      300,
    );
  }
  return ns.start([
    QEMU!,
    ...QEMU_ACCEL,
    ...microvm({ pcie: t.qemu.pcie }),
    "-netdev",
    `tap,id=n0,ifname=${TAP},script=no,downscript=no`,
    "-device",
    `${t.qemu.device},netdev=n0,mac=52:54:00:12:34:56`,
    "-kernel",
    elf,
    "-append",
    cmdline,
  ], 300);
}

interface Sample {
  fps: number;
}

async function once(
  ns: NetNs,
  vmm: Vmm,
  t: Transport,
  dir: Direction,
  khz: number,
  flood: string,
): Promise<Sample> {
  if (dir === "guest_to_host") {
    const before = await ns.stat(TAP, "rx_packets");
    const r = await start(ns, vmm, t, `mode=tx n=${N}`).done;
    const m = /sent (\d+) frames in (\d+) cycles/.exec(r.stdout);
    if (!m) throw new Error(`${vmm} ${t.name} tx: ${r.stdout}${r.stderr}`);
    const counted = (await ns.stat(TAP, "rx_packets")) - before;
    if (counted !== N) throw new Error(`${vmm} ${t.name} tx: the host counted ${counted} of ${N}`);
    return { fps: N / (Number(m[2]) / khz / 1000) };
  }
  // The guest holds its buffers back for WAIT_MCYCLES while the host queues N frames on the
  // TAP device (its queue made longer than N), so what is timed is the VMM moving frames
  // that are all there already, not the sender.
  const vm = start(ns, vmm, t, `mode=rx n=${N} wait=${WAIT_MCYCLES}`);
  await ns.until(async () =>
    (await ns.run(["cat", `/sys/class/net/${TAP}/carrier`])).stdout.trim() === "1"
  );
  const dropped0 = await ns.stat(TAP, "tx_dropped");
  const sent = await ns.run([flood, TAP, String(N)], 120);
  if (sent.code !== 0) throw new Error(`flood: ${sent.stderr}`);
  const dropped = (await ns.stat(TAP, "tx_dropped")) - dropped0;
  const r = await vm.done;
  const m = /received (\d+) frames in (\d+) cycles/.exec(r.stdout);
  if (dropped > 0 || !m || Number(m[1]) !== N) {
    throw new Error(
      `${vmm} ${t.name} rx: ${dropped} dropped on the TAP (the guest's wait too short?): ${r.stdout}${r.stderr}`,
    );
  }
  return { fps: N / (Number(m[2]) / khz / 1000) };
}

async function main() {
  await buildGuests(["virtio-net"]);
  const tmp = await Deno.makeTempDir({ prefix: "vmdesc-bench-net-" });
  try {
    const khz = await tscKhz(tmp);
    const flood = `${tmp}/flood`;
    await must("gcc", ["-O2", "-o", flood, ROOT + "bench/net/flood.c"]);
    await using ns = await NetNs.create();
    await ns.tap(TAP, null);
    await ns.must(["ip", "link", "set", TAP, "txqueuelen", String(N + 1000)]);
    const vmms: Vmm[] = WITH_QEMU ? ["vmdesc", "qemu"] : ["vmdesc"];
    const rand = prng(0x6e6574);
    const results: Record<string, unknown>[] = [];
    const table: string[] = [];
    for (const t of TRANSPORTS) {
      for (const dir of ["guest_to_host", "host_to_guest"] as Direction[]) {
        const samples: Record<Vmm, Sample[]> = { vmdesc: [], qemu: [] };
        for (let run = 0; run < RUNS; run++) {
          const order = rand() < 0.5 ? vmms : [...vmms].reverse();
          for (const vmm of order) samples[vmm].push(await once(ns, vmm, t, dir, khz, flood));
        }
        const row: Record<string, unknown> = { transport: t.name, direction: dir };
        for (const vmm of vmms) {
          const fps = samples[vmm].map((s) => s.fps);
          row[vmm] = {
            fps_best: Math.round(Math.max(...fps)),
            fps_median: Math.round(median(fps)),
            runs: fps.map(Math.round),
          };
        }
        if (WITH_QEMU) {
          const v = row.vmdesc as { fps_median: number; fps_best: number };
          const q = row.qemu as { fps_median: number; fps_best: number };
          row.ratio_median = Math.round((v.fps_median / q.fps_median) * 100) / 100;
          row.ratio_best = Math.round((v.fps_best / q.fps_best) * 100) / 100;
        }
        results.push(row);
        const line = `${t.name.padEnd(5)} ${dir.padEnd(14)} ` +
          vmms.map((vmm) => {
            const s = row[vmm] as { fps_best: number; fps_median: number };
            return `${vmm} best ${s.fps_best} median ${s.fps_median} frames/s`;
          }).join("   ") +
          (WITH_QEMU ? `   vmdesc/qemu median ${row.ratio_median}×` : "");
        console.log(line);
        table.push(line);
      }
    }
    const qemuVersion = WITH_QEMU
      ? new TextDecoder().decode(
        (await new Deno.Command(QEMU!, { args: ["--version"], stdout: "piped" }).output()).stdout,
      ).split("\n")[0]
      : null;
    const out = {
      benchmark: "net",
      date: new Date().toISOString(),
      host: {
        tsc_khz: khz,
        kernel: Deno.osRelease(),
        qemu: qemuVersion,
        qemu_accel: QEMU_ACCEL.join(" "),
        note:
          "a shared 2-core host whose /dev/kvm is a software KVM (kvm_pvm, ~0.5 µs per guest instruction): ratios measured side by side mean more than absolute numbers",
      },
      method: {
        frames: N,
        frame_bytes: 60,
        runs: RUNS,
        guest:
          "examples/guests/virtio_net.c, polling, 256 receive buffers of 2 KiB, 32 frames per transmit notify",
        guest_to_host:
          "N frames timed by the guest's TSC until the device took the last; the host's rx_packets on the TAP must be exactly N",
        host_to_guest:
          "bench/net/flood.c floods the TAP through a packet socket; the guest times N frames from the first; drop_share = the TAP's tx_dropped / frames offered",
      },
      results,
    };
    await Deno.writeTextFile(ROOT + "bench/results/net.json", JSON.stringify(out, null, 2) + "\n");
    console.log("wrote bench/results/net.json");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

await main();
