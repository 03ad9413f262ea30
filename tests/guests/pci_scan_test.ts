/**
 * pci-scan must find exactly the functions the Plan declares (plus the host bridge the
 * pci_host model presents at 00:00.0), with their IDs and class, by ECAM and by CF8/CFC.
 * The expected list is derived from the compiled Plan, never written down here.
 */
import assert from "node:assert/strict";
import type { Plan } from "../../plan/types.ts";
import type { HoleStrategy } from "../../plan/types.ts";
import { presentPciFunctions } from "../../runtime/devices/pci_host/mod.ts";
import { kvmTest, runGuest } from "./boot.ts";

const LINE =
  /^(ecam|cf8) ([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) ([0-9a-f]{4}):([0-9a-f]{4}) class ([0-9a-f]{6})$/;

function hex(n: number, w: number): string {
  return n.toString(16).padStart(w, "0");
}

function expectedLines(plan: Plan, method: "ecam" | "cf8", buses?: [number, number]): string[] {
  const ecam = plan.hole!.ecam!;
  const [first, last] = buses ?? [ecam.bus_start, ecam.bus_end];
  return presentPciFunctions(plan)
    .filter((f) => method === "cf8" || (f.bus >= first && f.bus <= last))
    .map((f) =>
      `${method} ${f.bdf} ${hex(f.vendor_id, 4)}:${hex(f.device_id, 4)} class ${
        hex(f.class_code, 6)
      }`
    );
}

async function scanTest(strategy: HoleStrategy) {
  const { plan, result, output } = await runGuest("pci-scan", "pci_scan.vmdesc", {
    holeStrategy: strategy,
  });
  assert.equal(plan.hole?.strategy, strategy);
  const lines = output.split("\n");
  const e = plan.hole!.ecam!;
  assert.equal(
    lines[0],
    `pci-scan: ecam ${hex(e.base, 8)} buses ${hex(e.bus_start, 2)}-${
      hex(e.bus_end, 2)
    } (acpi mcfg)`,
    "the guest found the Plan's ECAM window in the ACPI MCFG",
  );
  for (const method of ["ecam", "cf8"] as const) {
    const found = lines.filter((l) => LINE.test(l) && l.startsWith(`${method} `));
    const expected = expectedLines(plan, method);
    assert.deepEqual(found, expected, `${method} scan under ${strategy}`);
    assert.ok(lines.includes(`${method}: ${expected.length} functions`), `${method} count line`);
  }
  // The Plan declares functions on more than one bus and a multi-function device.
  assert.ok(new Set(plan.pci.map((f) => f.bus)).size > 1);
  assert.ok(plan.pci.some((f) => f.function > 0));
  assert.ok(lines.includes("pci-scan: ecam and cf8 agree"), output);
  assert.equal(result.reason, "debug_exit");
  assert.equal(result.debugValue, 0);
  assert.equal(result.exitStatus, 1);
  const host = result.stats.devices.find((d) => d.kind === "pci_host");
  assert.ok(host, "pci_host stats present");
  return { host, output };
}

kvmTest(
  "guest pci-scan: exactly the Plan's functions by ECAM and CF8, same under trap and shadow",
  async () => {
    const trap = await scanTest("trap");
    // Under trap every ECAM read exits: at least one per device slot of every bus.
    assert.ok(trap.host.model.ecam_reads >= 256 * 32, `ecam_reads ${trap.host.model.ecam_reads}`);
    const shadow = await scanTest("shadow");
    assert.equal(shadow.output, trap.output, "byte-identical output under both strategies");
    assert.equal(shadow.host.model.ecam_reads, 0, "under shadow no ECAM read reached the VMM");
  },
);

kvmTest("guest pci-scan: ecam= and buses= on the command line override the MCFG", async () => {
  const ecamBase = 0xe0000000;
  const { plan, result, output } = await runGuest("pci-scan", "pci_scan.vmdesc", {
    holeStrategy: "trap",
    cmdline: `ecam=0x${hex(ecamBase, 8)} buses=0-0`,
  });
  assert.equal(plan.hole!.ecam!.base, ecamBase);
  const lines = output.split("\n");
  assert.equal(lines[0], `pci-scan: ecam ${hex(ecamBase, 8)} buses 00-00 (cmdline)`);
  const ecamLines = lines.filter((l) => LINE.test(l) && l.startsWith("ecam "));
  assert.deepEqual(ecamLines, expectedLines(plan, "ecam", [0, 0]));
  assert.ok(
    ecamLines.length < expectedLines(plan, "cf8").length,
    "bus 1 is outside the scanned range",
  );
  assert.ok(lines.includes("pci-scan: ecam and cf8 differ"));
  assert.equal(result.exitStatus, 3);
});
