/**
 * The virtio guests (examples/guests/virtio_blk.c, virtio_rng.c) on vmdesc: a disk and an
 * entropy source over the modern PCI transport and over virtio-mmio (found through ACPI and
 * through the command line), with the guest waiting by polling, MSI-X and INTx. Each disk
 * run checks the image afterwards: the one sector the guest wrote, nothing else.
 * (virtio_qemu_test.ts runs the same guests under QEMU microvm.)
 */
import assert from "node:assert/strict";
import { kvmTest } from "./boot.ts";
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import { assertImage, bootVirtio, markedSector, tempImage } from "./virtio.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

const BLK_CASES: [machine: string, wait: string][] = [
  ["virtio_pci", "poll"],
  ["virtio_pci", "msix"],
  ["virtio_pci", "intx"],
  ["virtio_mmio", "poll"],
  ["virtio_mmio", "intx"],
  ["virtio_mmio_cmdline", "poll"],
  ["virtio_mmio_cmdline", "intx"],
];

for (const [machine, wait] of BLK_CASES) {
  kvmTest(`virtio-blk on vmdesc: ${machine}, ${wait}`, async () => {
    using img = tempImage();
    const { result, output, plan } = await bootVirtio({
      machine,
      guest: "virtio-blk",
      cmdline: `irq=${wait} sector=5`,
      image: img.path,
    });
    const transport = machine === "virtio_pci" ? "pci" : "mmio";
    assert.match(
      output,
      new RegExp(`virtio-blk: ${transport} ${wait} capacity 2048 sectors read-write`),
    );
    assert.match(output, /serial "vmdesc-(pci|mmio)"/);
    assert.match(output, /sector 0 starts 564d444553432d544553542d4449534b/, "VMDESC-TEST-DISK");
    assert.match(output, /wrote sector 5 and read it back/);
    assert.match(output, /past the end refused/);
    assert.match(output, /virtio-blk: all ok/, output);
    assert.equal(result.exitStatus, 1, `${result.message}\n${output}`);
    assertImage(img.path, img.original, 5, markedSector());
    // The device counted what it did, and no fault.
    const id = transport === "pci" ? "00:03.0" : "disk0";
    const dev = result.stats.devices.find((d) => d.id === id)!;
    assert.equal(dev.model.writes, 1);
    assert.ok(dev.model.reads >= 2);
    assert.equal(dev.model.status_ioerr, 2, "the two past-the-end reads");
    assert.ok(!Object.keys(dev.model).some((k) => k.startsWith("fault_")), "no faults");
    if (machine === "virtio_mmio_cmdline") {
      assert.match(plan.boot.cmdline, /virtio_mmio\.device=4K@0xfeb00000:5/);
    }
  });
}

kvmTest(
  "virtio-blk on vmdesc: a readonly disk refuses writes; the image is untouched",
  async () => {
    for (const machine of ["virtio_pci", "virtio_mmio"]) {
      using img = tempImage();
      Deno.chmodSync(img.path, 0o444); // opened read-only: a read-only file is enough
      const { result, output } = await bootVirtio({
        machine,
        guest: "virtio-blk",
        cmdline: "irq=poll expect_ro=1",
        image: img.path,
        readonly: true,
      });
      assert.match(output, /read-only\n/);
      assert.match(output, /write refused \(read-only\)/);
      assert.match(output, /all ok/, output);
      assert.equal(result.exitStatus, 1);
      assertImage(img.path, img.original);
    }
  },
);

const RNG_CASES: [machine: string, wait: string][] = [
  ["virtio_pci", "msix"],
  ["virtio_pci", "poll"],
  ["virtio_mmio", "intx"],
  ["virtio_mmio_cmdline", "poll"],
];

for (const [machine, wait] of RNG_CASES) {
  kvmTest(`virtio-rng on vmdesc: ${machine}, ${wait}`, async () => {
    const { result, output } = await bootVirtio({
      machine,
      guest: "virtio-rng",
      cmdline: `irq=${wait} n=4096`,
    });
    const m = /virtio-rng: \w+ \w+ 4096 bytes, (\d+) distinct/.exec(output);
    assert.ok(m, output);
    // 4096 random bytes show nearly every byte value.
    assert.ok(Number(m[1]) > 200, `${m[1]} distinct byte values`);
    assert.equal(result.exitStatus, 1, output);
    const dev = result.stats.devices.find((d) => d.kind === "virtio_rng")!;
    assert.ok(dev.model.bytes >= 4096);
  });
}

kvmTest(
  "virtio on vmdesc: an image that cannot be opened is E1018 before the VM exists",
  async () => {
    const missing = `/tmp/vmdesc-no-such-${crypto.randomUUID()}.img`;
    await assert.rejects(
      () => bootVirtio({ machine: "virtio_pci", guest: "virtio-blk", image: missing }),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, "E1018");
        assert.match(e.message, /cannot open its image .*no such file/);
        assert.match(e.hint ?? "", /truncate -s 64M/);
        return true;
      },
    );
    // Two writers of one image: the second machine is refused while the first holds it.
    using img = tempImage();
    await assert.rejects(
      () =>
        bootVirtio({
          machine: "virtio_pci",
          guest: "virtio-blk",
          image: img.path,
          edit: (plan) => {
            // A second disk on the same image, as a virtio-mmio device next to the PCI one.
            plan.devices.push({
              id: "disk1",
              kind: "virtio_blk",
              ports: [],
              mmio: [{ base: 0xfeb0_0000, size: 4096 }],
              irq: 5,
              props: {},
              virtio: {
                device_type: 2,
                queue_sizes: [256],
                transport: { kind: "mmio", version: 2 },
                backing: { kind: "file", path: img.path, readonly: false, serial: "" },
              },
            });
          },
        }),
      (e: Error & { code?: string }) => e.code === "E1018" && /another machine/.test(e.message),
    );
    assertImage(img.path, img.original);
  },
);

kvmTest(
  "vmdesc boot: a missing disk image is W0008, then E1018 with status 10, nothing run",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "vmdesc-e1018-" });
    try {
      const file = `${dir}/m.vmdesc`;
      Deno.writeTextFileSync(
        file,
        `machine m {\n  memory 64 MiB\n  device serial com1 { port 0x3f8 }\n  device debug_exit { port 0xf4 }\n  device virtio_blk disk0 { file "disk.img" }\n  boot pvh "${
          guestPath("virtio-blk")
        }"\n}\n`,
      );
      await buildGuests(["virtio-blk"]);
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "cli/vmdesc.ts", "boot", file],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 10, stderr);
      assert.match(stderr, /warning\[W0008\]: the disk image `disk.img` was not found/);
      assert.match(
        stderr,
        /error\[E1018\]: virtio_blk disk0: cannot open its image .*disk\.img: no such file/,
      );
      assert.match(stderr, /help: create it \(e\.g\. `truncate -s 64M /);
      assert.equal(new TextDecoder().decode(r.stdout), "", "the guest never ran");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

kvmTest(
  "examples/q35.vmdesc and examples/firecracker.vmdesc boot their disk as written",
  async () => {
    for (const [name, transport] of [["q35", "pci msix"], ["firecracker", "mmio intx"]]) {
      using img = tempImage();
      const { result, output, plan } = await bootVirtio({
        file: `${ROOT}examples/${name}.vmdesc`,
        machine: name,
        image: img.path,
      });
      assert.match(output, new RegExp(`virtio-blk: ${transport} capacity 2048 sectors`), output);
      assert.match(output, /virtio-blk: all ok/);
      assert.equal(result.exitStatus, 1, result.message);
      assertImage(img.path, img.original, 1, markedSector());
      if (name === "firecracker") {
        assert.equal(
          plan.boot.cmdline,
          "console=ttyS0 reboot=k panic=1 pci=off virtio_mmio.device=4K@0xfeb00000:5 virtio_mmio.device=4K@0xfeb01000:6",
        );
      }
    }
  },
);
