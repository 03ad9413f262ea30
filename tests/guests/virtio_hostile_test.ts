/**
 * Hostile guests against vmdesc's virtio block device, inside real machines: for each rule
 * examples/guests/virtio_hostile.c breaks, over PCI and over virtio-mmio, the device answers
 * as documented (the request fails alone, or NEEDS_RESET), the guest sees that answer,
 * vmdesc warns once and counts the fault in its stats, the run carries on to a normal end,
 * and the image is byte-identical except for the one valid write the guest makes last.
 * (runtime/devices/virtio/virtio_test.ts drives the same cases, and more, from TypeScript.)
 */
import assert from "node:assert/strict";
import { kvmTest } from "./boot.ts";
import { assertImage, bootVirtio, markedSector, tempImage } from "./virtio.ts";

/** attack → [the fault kind the device counts, how it answers, PCI only]. */
const ATTACKS: Record<string, [kind: string, answer: "fails" | "reset", pciOnly?: boolean]> = {
  "desc-hole": ["descriptor_outside_ram", "fails"],
  "desc-rom": ["descriptor_outside_ram", "fails", true],
  "desc-past-end": ["descriptor_outside_ram", "fails"],
  "desc-4g": ["descriptor_outside_ram", "fails"],
  "loop": ["chain_too_long", "fails"],
  "chain-order": ["chain_order", "fails"],
  "indirect-nested": ["indirect_table", "fails"],
  "indirect-len": ["indirect_table", "fails"],
  "qsize": ["queue_size", "reset"],
  "ring-rom": ["ring_outside_ram", "reset", true],
  "ring-hole": ["ring_outside_ram", "reset"],
  "ring-past-end": ["ring_outside_ram", "reset"],
  "notify-early": ["notify_before_driver_ok", "reset"],
  "avail-jump": ["avail_index", "reset"],
  "head-index": ["head_index", "reset"],
  "status-clear": ["status_protocol", "reset"],
};

for (const [attack, [kind, answer, pciOnly]] of Object.entries(ATTACKS)) {
  for (const machine of pciOnly ? ["virtio_pci"] : ["virtio_pci", "virtio_mmio"]) {
    kvmTest(`hostile virtio guest on vmdesc: ${attack} (${machine})`, async () => {
      using img = tempImage();
      const { result, output, warnings } = await bootVirtio({
        machine,
        guest: "virtio-hostile",
        cmdline: `attack=${attack} sector=7`,
        image: img.path,
      });
      assert.match(
        output,
        answer === "fails"
          ? new RegExp(`hostile: ${attack}: the request failed alone \\(used length 0\\)`)
          : new RegExp(`hostile: ${attack}: the device set NEEDS_RESET`),
        output,
      );
      assert.match(output, /the device still works/, output);
      assert.equal(result.exitStatus, 1, `${result.message}\n${output}`);
      // One warning, naming the device and what it will not do; the count is in the stats.
      const id = machine === "virtio_pci" ? "00:03.0" : "disk0";
      const mine = warnings.filter((w) => w.startsWith(`virtio_blk ${id}:`));
      assert.equal(mine.length, 1, warnings.join("\n"));
      assert.match(mine[0], answer === "fails" ? /the request fails/ : /NEEDS_RESET/);
      assert.equal(warnings.length, 1, warnings.join("\n"));
      const dev = result.stats.devices.find((d) => d.id === id)!;
      assert.equal(dev.model[`fault_${kind}`], 1, JSON.stringify(dev.model));
      assertImage(img.path, img.original, 7, markedSector());
    });
  }
}
