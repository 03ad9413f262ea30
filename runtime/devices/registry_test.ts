import assert from "node:assert/strict";
import { DEVICE_MODELS, PCI_FUNCTION_DEVICES } from "./registry.ts";
import { RuntimeError } from "../errors.ts";
import { devicePlan, minimalPlan, recordingContext } from "./testing.ts";

Deno.test("registry: every v1 device kind builds from a Plan entry and closes", () => {
  const plan = minimalPlan();
  const entries = [
    devicePlan({ id: "com1", kind: "serial", ports: [{ base: 0x3f8, size: 8 }], irq: 4 }),
    devicePlan({ id: "debug_exit", kind: "debug_exit", ports: [{ base: 0xf4, size: 1 }] }),
    devicePlan({
      id: "i8042",
      kind: "i8042",
      ports: [{ base: 0x60, size: 1 }, { base: 0x64, size: 1 }],
    }),
    devicePlan({ id: "pci_host", kind: "pci_host", ports: [{ base: 0xcf8, size: 8 }] }),
    devicePlan({
      id: "acpi_sleep",
      kind: "acpi_sleep",
      ports: [{ base: 0x600, size: 2 }],
      props: { s5_type: 5 },
    }),
  ];
  assert.deepEqual([...DEVICE_MODELS.keys()].sort(), [
    "acpi_sleep",
    "debug_exit",
    "i8042",
    "pci_host",
    "serial",
    "virtio_blk",
    "virtio_console",
    "virtio_net",
    "virtio_rng",
  ]);
  assert.deepEqual([...PCI_FUNCTION_DEVICES.keys()].sort(), [
    "virtio_blk",
    "virtio_console",
    "virtio_net",
    "virtio_rng",
  ]);
  for (const entry of entries) {
    const dev = DEVICE_MODELS.get(entry.kind)!(entry, recordingContext(), plan);
    assert.equal(dev.id, entry.id);
    assert.ok(dev.ports.length > 0);
    dev.reset();
    assert.equal(typeof dev.stats(), "object");
    dev.close?.();
  }
});

Deno.test("registry: a hand-written Plan entry without ports is E1006, not a crash", () => {
  // (The virtio kinds without their `virtio` entry or MMIO page too.)
  for (
    const kind of [
      "serial",
      "debug_exit",
      "i8042",
      "acpi_sleep",
      "virtio_blk",
      "virtio_rng",
      "virtio_console",
      "virtio_net",
    ]
  ) {
    assert.throws(
      () =>
        DEVICE_MODELS.get(kind)!(devicePlan({ id: kind, kind }), recordingContext(), minimalPlan()),
      (e: unknown) => e instanceof RuntimeError && e.code === "E1006",
    );
  }
});
