import assert from "node:assert/strict";
import { createAcpiSleep, SLP_EN, WAK_STS } from "./mod.ts";

const S5_SLEEP_TYPE = 5;
import { devicePlan, minimalPlan, recordingContext } from "../testing.ts";
import { RuntimeError } from "../../errors.ts";

function setup() {
  const ctx = recordingContext();
  const dev = createAcpiSleep(
    devicePlan({
      id: "acpi_sleep",
      kind: "acpi_sleep",
      ports: [{ base: 0x600, size: 2 }],
      props: { s5_type: S5_SLEEP_TYPE },
    }),
    ctx,
    minimalPlan(),
  );
  return { ctx, dev };
}

Deno.test("acpi_sleep: Linux's S5 sequence powers the machine off", () => {
  const { ctx, dev } = setup();
  assert.deepEqual(dev.ports, [{ base: 0x600, size: 2 }]);
  // acpi_hw_extended_sleep: clear WAK_STS, write SLP_TYP, then SLP_TYP | SLP_EN.
  dev.write("pio", 0x601, 1, WAK_STS);
  dev.write("pio", 0x600, 1, S5_SLEEP_TYPE << 2);
  assert.equal(ctx.stops.length, 0, "SLP_TYP alone does nothing");
  assert.equal(dev.read("pio", 0x600, 1), S5_SLEEP_TYPE << 2, "SLP_EN reads as 0");
  dev.write("pio", 0x600, 1, (S5_SLEEP_TYPE << 2) | SLP_EN);
  assert.deepEqual(ctx.stops, [{ kind: "poweroff", source: "acpi_sleep" }]);
  assert.equal(dev.stats().poweroffs, 1);
});

Deno.test("acpi_sleep: a sleep state the DSDT never offered wakes at once", () => {
  const { ctx, dev } = setup();
  assert.equal(dev.read("pio", 0x601, 1), 0);
  dev.write("pio", 0x600, 1, (3 << 2) | SLP_EN); // S3
  assert.equal(ctx.stops.length, 0);
  assert.equal(dev.read("pio", 0x601, 1), WAK_STS, "WAK_STS set: the guest's wait ends");
  dev.write("pio", 0x601, 1, 0x7f);
  assert.equal(dev.read("pio", 0x601, 1), WAK_STS, "only a 1 in bit 7 clears it");
  dev.write("pio", 0x601, 1, WAK_STS);
  assert.equal(dev.read("pio", 0x601, 1), 0);
  assert.equal(dev.stats().unsupported_sleeps, 1);
});

Deno.test("acpi_sleep: a 16-bit access covers both registers", () => {
  const { ctx, dev } = setup();
  dev.write("pio", 0x600, 1, (2 << 2) | SLP_EN);
  assert.equal(dev.read("pio", 0x600, 2), (2 << 2) | (WAK_STS << 8));
  dev.write("pio", 0x600, 2, (WAK_STS << 8) | (S5_SLEEP_TYPE << 2) | SLP_EN);
  assert.equal(dev.read("pio", 0x601, 1), 0, "the high byte cleared WAK_STS");
  assert.deepEqual(ctx.stops, [{ kind: "poweroff", source: "acpi_sleep" }]);
});

Deno.test("acpi_sleep: reset returns to power-on state", () => {
  const { dev } = setup();
  dev.write("pio", 0x600, 1, (1 << 2) | SLP_EN);
  dev.reset();
  assert.equal(dev.read("pio", 0x600, 1), 0);
  assert.equal(dev.read("pio", 0x601, 1), 0);
});

Deno.test("acpi_sleep: S5 is the Plan's s5_type; a bad or missing one is E1006", () => {
  const ctx = recordingContext();
  const make = (props: Record<string, number | string>) =>
    createAcpiSleep(
      devicePlan({ id: "s", kind: "acpi_sleep", ports: [{ base: 0x600, size: 2 }], props }),
      ctx,
      minimalPlan(),
    );
  const dev = make({ s5_type: 7 });
  dev.write("pio", 0x600, 1, (5 << 2) | SLP_EN);
  assert.equal(ctx.stops.length, 0, "5 is not this machine's S5");
  dev.write("pio", 0x600, 1, (7 << 2) | SLP_EN);
  assert.deepEqual(ctx.stops, [{ kind: "poweroff", source: "s" }]);
  const bad: Record<string, number | string>[] = [{}, { s5_type: 8 }, { s5_type: "5" }];
  for (const props of bad) {
    assert.throws(
      () => make(props),
      (e: unknown) => e instanceof RuntimeError && e.code === "E1006",
    );
  }
});

Deno.test("acpi_sleep: a Plan entry with one port is E1006", () => {
  assert.throws(
    () =>
      createAcpiSleep(
        devicePlan({ id: "s", kind: "acpi_sleep", ports: [{ base: 0x600, size: 1 }] }),
        recordingContext(),
        minimalPlan(),
      ),
    (e: unknown) => e instanceof RuntimeError && e.code === "E1006",
  );
});
