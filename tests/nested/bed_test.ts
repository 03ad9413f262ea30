/**
 * The nested test bed for real: Debian's kernel under QEMU's emulator, its own KVM loaded
 * (or not), a command from this work tree run inside, its output and status brought back.
 * Each boot costs ~5 s plus what runs inside (deno starts in ~3 s under the emulator).
 */
import { equal, match, notEqual, ok } from "node:assert/strict";
import { BedNotReady, buildImage, runInBed } from "./mod.ts";
import { kernelOrSkip } from "../skip.ts";

const { skip } = await kernelOrSkip("nested test bed", {
  tools: ["qemu-system-x86_64", "busybox"],
});

/** Runs a command in the bed, collecting its output. */
async function bed(opts: Parameters<typeof runInBed>[0]) {
  const chunks: Uint8Array[] = [];
  const r = await runInBed({ ...opts, onOutput: (b) => chunks.push(b.slice()) });
  const output = new TextDecoder().decode(
    chunks.reduce((a, b) => {
      const c = new Uint8Array(a.length + b.length);
      c.set(a);
      c.set(b, a.length);
      return c;
    }, new Uint8Array()),
  );
  return { ...r, output };
}

Deno.test({
  name: "bed: /dev/kvm inside, vmdesc doctor's verdict ok, QEMU and included files carried, " +
    "TAP devices in a network namespace, the command's output and exit status brought back",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-bed-" });
    try {
      await Deno.writeTextFile(`${dir}/marker`, "carried\n");
      const r = await bed({
        command: [
          "sh",
          "-c",
          `test -c /dev/kvm && echo "kvm: yes"
           deno task -q vmdesc doctor >/tmp/doctor.txt; echo "doctor: $?"
           grep -E '^(✓|✗) vmdesc boot' /tmp/doctor.txt
           qemu-system-x86_64 --version | head -n 1
           cat ${dir}/marker
           test -c /dev/net/tun && echo "tun: yes"
           bash -c 'ip -V; ip netns add t && ip netns exec t sh -c "
             ip link set lo up && ping -c 1 -W 5 -n 127.0.0.1 >/dev/null &&
             ip tuntap add dev tap0 mode tap && ip link show tap0 >/dev/null" && echo "netns: yes"
             ip netns del t'
           printf 'no newline at the end'; exit 7`,
        ],
        include: [dir],
        withQemu: true,
      });
      equal(r.status, 7, r.output);
      match(r.output, /^kvm: yes$/m);
      match(r.output, /^doctor: 0$/m);
      match(r.output, /^✓ vmdesc boot can work on this host$/m);
      match(r.output, /^QEMU emulator version /m);
      match(r.output, /^carried$/m);
      // The network tests' tools (tests/net/): the tun module loaded, iproute2's ip (not
      // busybox's applet, which has no netns), ping, and namespaces that work.
      match(r.output, /^tun: yes$/m);
      match(r.output, /^ip utility, iproute2/m);
      match(r.output, /^netns: yes$/m);
      ok(r.output.endsWith("no newline at the end"), "output is byte for byte");
      ok(r.bootSeconds > 0 && r.bootSeconds < r.seconds, `boot ${r.bootSeconds} s`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bed: without the kvm modules, vmdesc doctor says ✗ with the svm hint, exit 1",
  ignore: skip !== null,
  async fn() {
    const r = await bed({
      command: ["sh", "-c", 'deno task -q vmdesc doctor; echo "doctor: $?"'],
      kvm: false,
    });
    equal(r.status, 0, r.output);
    match(r.output, /^✗ \/dev\/kvm not found \(ENOENT\)$/m);
    match(r.output, /= help: the CPU offers svm: load KVM \(sudo modprobe kvm_amd\)/);
    match(r.output, /^· host: a virtual machine.*the CPU offers svm/m);
    match(r.output, /^doctor: 1$/m);
  },
});

Deno.test({
  name: "bed: the image is cached by content: reused when nothing changed, rebuilt on a change",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-bed-" });
    try {
      await Deno.writeTextFile(`${dir}/f`, "one\n");
      const first = await buildImage({ include: [dir] });
      const again = await buildImage({ include: [dir] });
      equal(again.built, false);
      equal(again.path, first.path);
      await Deno.writeTextFile(`${dir}/f`, "two\n");
      const changed = await buildImage({ include: [dir] });
      equal(changed.built, true);
      notEqual(changed.hash, first.hash);
      await Deno.stat(changed.path);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bed: one that does not come up in time is booted again once, then BedNotReady",
  ignore: skip !== null,
  async fn() {
    const said: string[] = [];
    let error: unknown = null;
    try {
      // No bed is up in 0.3 s: both attempts are cut short, and nothing of `true` runs.
      await runInBed({ command: ["true"], bootTimeoutSeconds: 0.3, log: (l) => said.push(l) });
    } catch (e) {
      error = e;
    }
    ok(error instanceof BedNotReady, String(error));
    match((error as Error).message, /the bed did not come up in 0\.3 s/);
    equal(said.filter((l) => /booting it again/.test(l)).length, 1, said.join("\n"));
  },
});
