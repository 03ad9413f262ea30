/**
 * The network tests' own world: a network namespace made for one test (`vmdesc-test-` and
 * random hex), never the host's namespaces, interfaces or addresses. Everything a test runs
 * on the network side (vmdesc, QEMU, ping, ip) runs inside it through `ip netns exec`, so
 * the TAP devices are created there, and deleting the namespace at the end (always, from
 * `await using`) takes whatever is left in it along.
 */
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import { microvm, QEMU, qemuAccel } from "../qemu.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
export const NET_VMDESC = `${ROOT}examples/guests/virtio_net.vmdesc`;
/** The TAP device examples/guests/virtio_net.vmdesc names. */
export const TAP = "vmdesc0";
export const HOST_IP = "10.0.2.1";
export const GUEST_IP = "10.0.2.2";
/** GUEST_IP as the guest's `ip=` wants it. */
export const GUEST_IP_HEX = "0x0a000202";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const dec = new TextDecoder();

/** A process started in the namespace; `done` settles when it exits (or is killed). */
export interface Started {
  done: Promise<Ran>;
  kill(): void;
}

export class NetNs implements AsyncDisposable {
  readonly #live = new Set<Started>();

  private constructor(readonly name: string) {}

  static async create(): Promise<NetNs> {
    const bytes = crypto.getRandomValues(new Uint8Array(4));
    const name = `vmdesc-test-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    await must(["ip", "netns", "add", name]);
    const ns = new NetNs(name);
    try {
      await ns.must(["ip", "link", "set", "lo", "up"]);
    } catch (e) {
      await ns[Symbol.asyncDispose]();
      throw e;
    }
    return ns;
  }

  /** Starts `cmd` inside the namespace; killed after `timeout` s if still running. */
  start(cmd: string[], timeout = 90): Started {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.name, ...cmd],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const kill = () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    };
    const timer = setTimeout(kill, timeout * 1000);
    const started: Started = {
      kill,
      done: child.output().then((r) => ({
        code: r.code,
        stdout: dec.decode(r.stdout),
        stderr: dec.decode(r.stderr),
      })).finally(() => {
        clearTimeout(timer);
        this.#live.delete(started);
      }),
    };
    this.#live.add(started);
    return started;
  }

  run(cmd: string[], timeout = 90): Promise<Ran> {
    return this.start(cmd, timeout).done;
  }

  /** Runs `cmd`; throws with its output unless it exits 0. */
  async must(cmd: string[]): Promise<string> {
    const r = await this.run(cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(" ")}: exit ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /**
   * A persistent TAP device `name`, up, with the host's address (or none). Its ARP asks
   * for a neighbour 30 times (a second apart) instead of 3: a guest may take seconds from
   * opening the TAP to giving its first receive buffers (the nested test bed runs it on an
   * emulated CPU), and the requests wait in the TAP meanwhile. With 3, in one bed run of
   * two, the host gave up after 3 s and every ping of a test failed "Destination Host
   * Unreachable" while the guest went on waiting for them.
   */
  async tap(name = TAP, address: string | null = `${HOST_IP}/24`): Promise<void> {
    await this.must(["ip", "tuntap", "add", "dev", name, "mode", "tap"]);
    await this.must([
      "ip",
      "ntable",
      "change",
      "name",
      "arp_cache",
      "dev",
      name,
      "mcast_probes",
      "30",
    ]);
    if (address) await this.must(["ip", "addr", "add", address, "dev", name]);
    await this.must(["ip", "link", "set", name, "up"]);
  }

  /** Whether interface `name` exists in the namespace. */
  async hasLink(name: string): Promise<boolean> {
    return (await this.run(["ip", "link", "show", "dev", name])).code === 0;
  }

  /** A counter of /sys/class/net/<name>/statistics as the namespace sees it. */
  async stat(name: string, counter: string): Promise<number> {
    const out = await this.must(["cat", `/sys/class/net/${name}/statistics/${counter}`]);
    return Number(out.trim());
  }

  /** Waits until `probe` holds (every 50 ms, up to `ms`); false when it never did. */
  async until(probe: () => Promise<boolean>, ms = 30_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await probe()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /**
   * `ping` from the host side: its output, and how many replies came back. It waits up to
   * `wait` (default 30) s for replies (the guest may still be starting, see `tap`); it ends
   * as soon as all have come.
   */
  async ping(
    count: number,
    opts: { size?: number; to?: string; interval?: number; wait?: number } = {},
  ): Promise<{
    received: number;
    output: string;
  }> {
    const args = [
      "ping",
      "-c",
      String(count),
      "-i",
      String(opts.interval ?? 0.2),
      "-W",
      String(opts.wait ?? 30),
      "-n",
    ];
    if (opts.size !== undefined) args.push("-s", String(opts.size));
    const r = await this.run([...args, opts.to ?? GUEST_IP], 60);
    const m = /(\d+) received/.exec(r.stdout);
    return { received: m ? Number(m[1]) : 0, output: r.stdout + r.stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const p of [...this.#live]) p.kill();
    await Promise.allSettled([...this.#live].map((p) => p.done));
    await must(["ip", "netns", "del", this.name]);
  }
}

async function must(cmd: string[]): Promise<void> {
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  if (r.code !== 0) {
    throw new Error(`${cmd.join(" ")}: exit ${r.code}: ${dec.decode(r.stderr)}`);
  }
}

/** `vmdesc boot` of a machine of examples/guests/virtio_net.vmdesc, inside `ns`. */
export async function startVmdesc(
  ns: NetNs,
  machine: string,
  cmdline: string,
  opts: { file?: string; stats?: boolean; timeout?: number; apiSock?: string } = {},
): Promise<Started> {
  await buildGuests(["virtio-net"]);
  const args = [Deno.execPath(), "run", "-A", `${ROOT}cli/vmdesc.ts`, "boot", "--machine", machine];
  if (opts.stats) args.push("--stats");
  if (opts.apiSock) args.push("--api-sock", opts.apiSock);
  args.push("--cmdline", cmdline, opts.file ?? NET_VMDESC);
  return ns.start(args, opts.timeout ?? 90);
}

/**
 * The same guest under QEMU microvm inside `ns`, on the TAP device `TAP` (QEMU attaches to
 * the persistent one the test made): PCIe (`virtio-net-pci`, modern only) or virtio-mmio.
 */
export async function startQemu(ns: NetNs, pcie: boolean, cmdline: string): Promise<Started> {
  await buildGuests(["virtio-net"]);
  const dev = pcie ? "virtio-net-pci,disable-legacy=on" : "virtio-net-device";
  return ns.start([
    QEMU!,
    ...qemuAccel(),
    ...microvm({ pcie }),
    "-netdev",
    `tap,id=n0,ifname=${TAP},script=no,downscript=no`,
    "-device",
    `${dev},netdev=n0,mac=52:54:00:12:34:56`,
    "-kernel",
    guestPath("virtio-net"),
    "-append",
    cmdline,
  ], 120);
}
