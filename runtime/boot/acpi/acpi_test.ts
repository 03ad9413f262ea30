import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { AcpiPlanError, buildAcpi } from "./mod.ts";
import { sumsToZero } from "./tables.ts";
import { samplePlan } from "./testing.ts";

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

Deno.test("acpi: every table sums to zero and lies inside the Plan's ACPI area", () => {
  const plan = samplePlan();
  const { rsdpAddr, tables, blobs } = buildAcpi(plan);
  assertEquals(rsdpAddr, plan.acpi!.rsdp_addr);
  assertEquals(tables.map((t) => t.signature), ["RSDP", "DSDT", "FACP", "APIC", "MCFG", "XSDT"]);
  assertEquals(blobs.length, tables.length);
  for (const t of tables) {
    if (t.signature === "RSDP") {
      assert(sumsToZero(t.bytes, 0, 20), "RSDP legacy checksum");
      assert(sumsToZero(t.bytes), "RSDP extended checksum");
      continue;
    }
    assertEquals(dv(t.bytes).getUint32(4, true), t.bytes.length, `${t.signature} length`);
    assert(sumsToZero(t.bytes), `${t.signature} checksum`);
    assertEquals(t.addr % 16, 0);
    assert(t.addr >= plan.acpi!.tables_addr);
    assert(t.addr + t.bytes.length <= plan.acpi!.tables_addr + plan.acpi!.tables_size);
  }
});

Deno.test("acpi: RSDP → XSDT → FADT → DSDT pointers are consistent", () => {
  const { tables } = buildAcpi(samplePlan());
  const by = new Map(tables.map((t) => [t.signature, t]));
  const rsdp = dv(by.get("RSDP")!.bytes);
  assertEquals(Number(rsdp.getBigUint64(24, true)), by.get("XSDT")!.addr);
  assertEquals(rsdp.getUint8(15), 2);
  const x = by.get("XSDT")!.bytes;
  const entries = [];
  for (let o = 36; o < x.length; o += 8) entries.push(Number(dv(x).getBigUint64(o, true)));
  assertEquals(entries, ["FACP", "APIC", "MCFG"].map((s) => by.get(s)!.addr));
  const f = dv(by.get("FACP")!.bytes);
  assertEquals(f.getUint32(40, true), by.get("DSDT")!.addr);
  assertEquals(Number(f.getBigUint64(140, true)), by.get("DSDT")!.addr);
});

Deno.test("acpi: MCFG counts its base from bus 0 when the ECAM window starts later", () => {
  const plan = samplePlan({ busStart: 16, busEnd: 31 });
  const mcfg = buildAcpi(plan).tables.find((t) => t.signature === "MCFG")!.bytes;
  const ecam = plan.hole!.ecam!;
  assertEquals(Number(dv(mcfg).getBigUint64(44, true)), ecam.base - 16 * 0x10_0000);
  assertEquals([mcfg[54], mcfg[55]], [16, 31]);
});

Deno.test("acpi: no MCFG without ECAM, a PNP0A03 bridge instead", () => {
  const plan = samplePlan();
  plan.hole!.ecam = null;
  const { tables } = buildAcpi(plan);
  assertEquals(tables.some((t) => t.signature === "MCFG"), false);
});

Deno.test("acpi: too small an area or no ACPI in the Plan is E1006", () => {
  const small = samplePlan();
  small.acpi!.tables_size = 256;
  const e = assertThrowsAcpi(() => buildAcpi(small));
  assert(/need \d+ bytes/.test(e.message));
  const none = samplePlan();
  none.acpi = null;
  assertThrowsAcpi(() => buildAcpi(none));
});

Deno.test("acpi: \\_S5 carries the sleep device's s5_type; a bad one is E1006", () => {
  const plan = samplePlan();
  const dev = plan.devices.find((d) => d.kind === "acpi_sleep")!;
  dev.props.s5_type = 6;
  const dsdt = buildAcpi(plan).tables.find((t) => t.signature === "DSDT")!.bytes;
  // NameOp \_S5_ PackageOp PkgLength(3) NumElements(1) BytePrefix 6
  const s5 = [0x08, 0x5c, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x04, 0x01, 0x0a, 0x06];
  const at = dsdt.findIndex((_, i) => s5.every((b, j) => dsdt[i + j] === b));
  assert(at > 0, "\\_S5 with 6 in the DSDT");
  dev.props.s5_type = 9;
  assert(/s5_type/.test(assertThrowsAcpi(() => buildAcpi(plan)).message));
});

function assertThrowsAcpi(f: () => unknown): AcpiPlanError {
  let caught: unknown;
  assertThrows(() => {
    try {
      f();
    } catch (e) {
      caught = e;
      throw e;
    }
  });
  assert(caught instanceof AcpiPlanError);
  assertEquals(caught.code, "E1006");
  assert(caught.hint.length > 0);
  return caught;
}
