/**
 * The virtio-console guest under QEMU microvm, the reference: the same ELF that
 * virtio_console_test.ts boots on vmdesc drives QEMU's virtio-serial with a `virtconsole`
 * port (one port: no MULTIPORT), over PCIe (`virtio-serial-pci,disable-legacy=on`) and
 * virtio-mmio (`virtio-serial-device`). The console is QEMU's stdio (its stdin the input
 * the test pipes, its stdout what the guest printed); COM1 goes to a file.
 */
import assert from "node:assert/strict";
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import { microvm, QEMU, qemuAccel, qemuTest } from "../qemu.ts";

const INPUT = "hello console\nsecond line that is longer than sixteen bytes\n";

for (
  const c of [
    { name: "PCIe, MSI-X", pcie: true, dev: "virtio-serial-pci,disable-legacy=on", wait: "msix" },
    { name: "virtio-mmio, line", pcie: false, dev: "virtio-serial-device", wait: "intx" },
  ]
) {
  qemuTest(`virtio-console guest under QEMU microvm: ${c.name}`, async () => {
    await buildGuests(["virtio-console"]);
    const dir = Deno.makeTempDirSync({ prefix: "vmdesc-qemu-console-" });
    try {
      // COM1 to a file: QEMU's stdio is the console's.
      const args = microvm({ pcie: c.pcie });
      const at = args.indexOf("stdio");
      args[at] = `file:${dir}/com1.txt`;
      const child = new Deno.Command(QEMU!, {
        args: [
          ...qemuAccel(),
          ...args,
          "-device",
          `${c.dev},max_ports=1`,
          "-chardev",
          "stdio,id=con,signal=off",
          "-device",
          "virtconsole,chardev=con",
          "-kernel",
          guestPath("virtio-console"),
          "-append",
          `irq=${c.wait} rx=16`,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(INPUT + "\x04"));
      await w.close();
      const r = await child.output();
      clearTimeout(timer);
      const out = new TextDecoder().decode(r.stdout);
      const com1 = Deno.readTextFileSync(`${dir}/com1.txt`);
      const t = c.pcie ? "pci" : "mmio";
      assert.equal(
        out,
        `virtio-console: hello from the guest over ${t} ${c.wait}\n` +
          "virtio-console: no size\n" +
          "virtio-console: emergency write\n" +
          "virtio-console: echo until ^D\n" + INPUT + "virtio-console: bye\n",
        new TextDecoder().decode(r.stderr),
      );
      assert.match(com1, new RegExp(`${t} ${c.wait} echoed ${INPUT.length} bytes in 4 buffers`));
      assert.match(com1, /virtio-console: all ok/);
      assert.equal(r.code, 1);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
}
