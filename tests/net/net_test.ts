/**
 * virtio-net on a TAP device, end to end, in a network namespace each test makes
 * (netns.ts): the guest examples/guests/virtio_net.c answers ARP and ping, and sends frames
 * the host counts, on vmdesc over both transports, and under QEMU microvm as the reference.
 * vmdesc and QEMU run inside the namespace (`ip netns exec`), so their TAP devices live
 * there; the host side is the namespace's end of the TAP device.
 */
import assert from "node:assert/strict";
import { skipReason } from "../skip.ts";
import { curl } from "../api/helpers.ts";
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import {
  GUEST_IP_HEX,
  NET_VMDESC,
  NetNs,
  type Started,
  startQemu,
  startVmdesc,
  TAP,
} from "./netns.ts";

const NEEDS = { kvm: true, tools: ["ip", "ping"] };

function netTest(name: string, fn: () => Promise<void>, tools: string[] = []) {
  Deno.test({
    name,
    ignore: skipReason(name, { ...NEEDS, tools: [...NEEDS.tools, ...tools] }) !== null,
    // The namespace is deleted at the end; the spawned processes are awaited there.
    sanitizeResources: true,
    fn,
  });
}

/**
 * Waits until the VMM has the TAP device open (its carrier is on), so the first ping is
 * not lost to a TAP nobody reads. (A ping before the guest's driver is ready waits in the
 * TAP's queue: the device reads only where the guest has buffers.)
 */
async function ready(ns: NetNs, vm: Started) {
  const attached = await ns.until(async () =>
    (await ns.run(["cat", `/sys/class/net/${TAP}/carrier`])).stdout.trim() === "1"
  );
  if (!attached) {
    vm.kill();
    const r = await vm.done;
    throw new Error(`the TAP device never got its reader:\n${r.stdout}${r.stderr}`);
  }
}

for (const [machine, transport] of [["net_pci", "pci"], ["net_mmio", "mmio"]] as const) {
  netTest(
    `virtio-net (${transport}): the host pings the guest through the TAP device`,
    async () => {
      await using ns = await NetNs.create();
      await ns.tap();
      const vm = await startVmdesc(ns, machine, `ip=${GUEST_IP_HEX} pings=4`, { stats: true });
      await ready(ns, vm);
      const ping = await ns.ping(4);
      const r = await vm.done;
      assert.equal(ping.received, 4, ping.output + r.stdout + r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`virtio-net: ${transport} mac 52:54:00:[0-9a-f:]+ mrg_rxbuf link up`),
      );
      assert.match(r.stdout, /answered 4 pings, [1-9]\d* arp requests/);
      assert.equal(r.code, 1, r.stdout + r.stderr); // debug_exit value 0
      assert.match(r.stderr, /rx_frames [1-9]\d*/, "--stats counts the frames received");
      // A persistent TAP device made beforehand is left as it was.
      assert.ok(await ns.hasLink(TAP), "the persistent TAP device is still there");
    },
  );
}

netTest(
  "virtio-net: a frame larger than one receive buffer spans several (MRG_RXBUF)",
  async () => {
    await using ns = await NetNs.create();
    await ns.tap();
    // 256-byte receive buffers: a 1400-byte ping (1454 bytes with headers) takes six.
    const vm = await startVmdesc(ns, "net_pci", `ip=${GUEST_IP_HEX} pings=3 rxbuf=256`);
    await ready(ns, vm);
    const ping = await ns.ping(3, { size: 1400 });
    const r = await vm.done;
    assert.equal(ping.received, 3, ping.output + r.stdout + r.stderr);
    assert.match(r.stdout, /answered 3 pings/);
  },
);

netTest(
  "virtio-net: with one receive buffer, frames wait in the TAP device: none lost",
  async () => {
    await using ns = await NetNs.create();
    await ns.tap();
    // One buffer: most pings find the ring full and must wait until the guest gives it back.
    const n = 40;
    const vm = await startVmdesc(ns, "net_pci", `ip=${GUEST_IP_HEX} pings=${n} rxbufs=1`, {
      stats: true,
    });
    await ready(ns, vm);
    const ping = await ns.ping(n, { interval: 0.005 });
    const r = await vm.done;
    assert.equal(ping.received, n, ping.output + r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`answered ${n} pings`));
    const waits = /rx_waits_for_room (\d+)/.exec(r.stderr);
    assert.ok(waits && Number(waits[1]) > 1, `the ring was full at times: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /rx_dropped [1-9]/, "nothing dropped by vmdesc");
  },
);

netTest(
  "virtio-net: frames that arrive while the machine is paused wait in the TAP device and arrive after resume",
  async () => {
    await using ns = await NetNs.create();
    await ns.tap();
    const dir = await Deno.makeTempDir();
    try {
      const sock = `${dir}/m.sock`;
      // 1 ping before the pause, 3 while paused, 2 after: the guest ends after answering 6.
      const vm = await startVmdesc(ns, "net_pci", `ip=${GUEST_IP_HEX} pings=6`, {
        stats: true,
        apiSock: sock,
      });
      await ready(ns, vm);
      const first = await ns.ping(1);
      assert.equal(first.received, 1, first.output);
      const action = async (action: string) =>
        assert.equal(
          (await curl(sock, "POST", "/v1/actions", { body: JSON.stringify({ action }) })).status,
          200,
        );
      const rxFrames = async () => {
        const stats = (await curl(sock, "GET", "/v1/machine/stats")).json as {
          devices: { kind: string; model: { rx_frames: number } }[];
        };
        return stats.devices.find((d) => d.kind === "virtio_net")!.model.rx_frames;
      };
      await action("pause");
      const before = await rxFrames();
      // Paused: no answer, and the device takes in nothing (vCPU 0, which reads the TAP
      // device, is parked); the frames wait in the TAP device's queue.
      const paused = await ns.ping(3, { wait: 1 });
      assert.equal(paused.received, 0, paused.output);
      assert.equal(await rxFrames(), before, "no frame read while paused");
      await action("resume");
      const after = await ns.ping(2);
      const r = await vm.done;
      assert.equal(after.received, 2, after.output + r.stdout + r.stderr);
      // The three that waited were answered too (late, to a ping that had given up).
      assert.match(r.stdout, /answered 6 pings/, r.stdout + r.stderr);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.doesNotMatch(r.stderr, /rx_dropped [1-9]/, "nothing dropped by vmdesc");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  ["curl"],
);

netTest("virtio-net: N frames sent by the guest arrive on the host, exactly N", async () => {
  await using ns = await NetNs.create();
  await ns.tap(TAP, null);
  const before = await ns.stat(TAP, "rx_packets");
  const n = 5000;
  const vm = await startVmdesc(ns, "net_mmio", `mode=tx n=${n}`, { stats: true });
  const r = await vm.done;
  assert.match(r.stdout, new RegExp(`virtio-net: sent ${n} frames`), r.stdout + r.stderr);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal((await ns.stat(TAP, "rx_packets")) - before, n, "frames counted on the host");
  assert.match(r.stderr, new RegExp(`tx_frames ${n}\\b`), "--stats counts them too");
});

netTest("virtio-net: frames with bad headers or lengths never reach the host", async () => {
  await using ns = await NetNs.create();
  await ns.tap(TAP, null);
  const before = await ns.stat(TAP, "rx_packets");
  const r = await (await startVmdesc(ns, "net_pci", "mode=badtx", { stats: true })).done;
  assert.match(r.stdout, /sent 5 bad frames and 1 good one/, r.stdout + r.stderr);
  assert.equal((await ns.stat(TAP, "rx_packets")) - before, 1, "only the good frame");
  assert.match(r.stderr, /tx_frames 1\b/);
  assert.match(r.stderr, /tx_malformed 5\b/);
  // Warned once per kind, not per frame.
  assert.match(r.stderr, /a 16-byte transmit chain/);
  assert.equal(r.stderr.match(/a transmit header with/g)?.length, 1, r.stderr);
});

netTest("virtio-net: a TAP device vmdesc creates is removed when the machine ends", async () => {
  await using ns = await NetNs.create();
  assert.equal(await ns.hasLink(TAP), false);
  const vm = await startVmdesc(ns, "net_pci_smp", `ip=${GUEST_IP_HEX} pings=2`);
  // vmdesc created it; the host side configures it like any new interface.
  const created = await ns.until(() => ns.hasLink(TAP));
  if (!created) {
    vm.kill();
    const r = await vm.done;
    throw new Error(`vmdesc did not create ${TAP}:\n${r.stdout}${r.stderr}`);
  }
  await ns.must(["ip", "addr", "add", "10.0.2.1/24", "dev", TAP]);
  await ns.must(["ip", "link", "set", TAP, "up"]);
  const ping = await ns.ping(2);
  const r = await vm.done;
  assert.equal(ping.received, 2, ping.output + r.stdout + r.stderr);
  assert.equal(await ns.hasLink(TAP), false, "the TAP device vmdesc created is gone");
});

netTest(
  "virtio-net: a closed machine leaves no TAP descriptor, waiter thread or eventfd",
  async () => {
    await using ns = await NetNs.create();
    await ns.tap(TAP, null);
    await buildGuests(["virtio-net"]);
    // The Plan of net_pci with the guest's path made absolute, booting the transmit mode.
    const { compile } = await import("../../lang/mod.ts");
    const { DenoHost } = await import("../../host/disk_host.ts");
    const text = await Deno.readTextFile(NET_VMDESC);
    const c = compile(text, { file: NET_VMDESC, host: new DenoHost(), machine: "net_pci" });
    const plan = c.plans.get("net_pci")!;
    plan.boot.path = guestPath("virtio-net");
    plan.boot.cmdline = "mode=tx n=20";
    const file = await Deno.makeTempFile({ suffix: ".json" });
    try {
      await Deno.writeTextFile(file, JSON.stringify(plan));
      const probe = decodeURIComponent(new URL("./resources_probe.ts", import.meta.url).pathname);
      const r = await ns.run([Deno.execPath(), "run", "-A", probe, file, "4"], 180);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const got = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assert.deepEqual(
        got.runs,
        [
          "caller:debug_exit",
          "worker:debug_exit",
          "caller:debug_exit",
          "worker:debug_exit",
          "caller:debug_exit",
          "worker:debug_exit",
        ],
        r.stdout,
      );
      assert.equal(got.after.fds, got.before.fds, `open fds: ${r.stdout}`);
      assert.equal(got.after.threads, got.before.threads, `threads: ${r.stdout}`);
      assert.equal(got.tapAfter, true, "the persistent TAP device is left as it was");
    } finally {
      await Deno.remove(file);
    }
  },
);

netTest("virtio-net: a name taken by another kind of interface is E1042", async () => {
  await using ns = await NetNs.create();
  const file = await Deno.makeTempFile({ suffix: ".vmdesc" });
  try {
    const text = await Deno.readTextFile(
      decodeURIComponent(
        new URL("../../examples/guests/virtio_net.vmdesc", import.meta.url).pathname,
      ),
    );
    const elf = decodeURIComponent(
      new URL("../../examples/guests/build/virtio-net.elf", import.meta.url).pathname,
    );
    await Deno.writeTextFile(
      file,
      text.replace('tap "vmdesc0" }', 'tap "lo" }').replaceAll("build/virtio-net.elf", elf),
    );
    const r = await (await startVmdesc(ns, "net_mmio", "", { file })).done;
    assert.match(
      r.stderr,
      /error\[E1042\]: virtio_net eth0: the interface lo exists and is not a TAP device/,
    );
    assert.notEqual(r.code, 0);
    assert.ok(await ns.hasLink("lo"), "lo untouched");
  } finally {
    await Deno.remove(file);
  }
});

// ── QEMU microvm, the reference ───────────────────────────────────────────────────────

for (const pcie of [true, false]) {
  const t = pcie ? "pci" : "mmio";
  netTest(`virtio-net guest under QEMU microvm (${t}): the host pings it`, async () => {
    await using ns = await NetNs.create();
    await ns.tap();
    const vm = await startQemu(ns, pcie, `ip=${GUEST_IP_HEX} pings=4`);
    await ready(ns, vm);
    const ping = await ns.ping(4);
    const r = await vm.done;
    assert.equal(ping.received, 4, ping.output + r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`virtio-net: ${t} mac 52:54:00:12:34:56 mrg_rxbuf link up`));
    assert.match(r.stdout, /answered 4 pings/);
    assert.equal(r.code, 1, r.stdout + r.stderr);
  }, ["qemu-system-x86_64"]);

  netTest(`virtio-net guest under QEMU microvm (${t}): N frames arrive, exactly N`, async () => {
    await using ns = await NetNs.create();
    await ns.tap(TAP, null);
    const before = await ns.stat(TAP, "rx_packets");
    const n = 5000;
    const r = await (await startQemu(ns, pcie, `mode=tx n=${n}`)).done;
    assert.match(r.stdout, new RegExp(`virtio-net: sent ${n} frames`), r.stdout + r.stderr);
    assert.equal((await ns.stat(TAP, "rx_packets")) - before, n);
  }, ["qemu-system-x86_64"]);
}
