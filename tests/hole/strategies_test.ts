/**
 * The two PCI-hole strategies must be indistinguishable to a guest, except for speed:
 * - pci-scan and bar-size print byte-identical output under `trap` and `shadow`;
 * - writes to absent functions are ignored under both (they read back all-ones);
 * - under `shadow`, reading absent functions costs no exit at all (from the run's stats),
 *   while config writes still reach the host bridge;
 * - `ecam BASE buses auto` advertises only the buses the machine uses.
 * Every run boots on the real /dev/kvm.
 */
import assert from "node:assert/strict";
import { compile } from "../../lang/mod.ts";
import type { HoleStrategy, Plan } from "../../plan/types.ts";
import { DenoHost } from "../../host/disk_host.ts";
import { createMachine, type RunResult } from "../../runtime/mod.ts";
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import { kvmTest } from "../guests/boot.ts";

const GUESTS = decodeURIComponent(new URL("../../examples/guests/", import.meta.url).pathname);

interface Run {
  plan: Plan;
  result: RunResult;
  output: string;
}

function planFor(
  file: string,
  text: string | null,
  opts: { holeStrategy?: HoleStrategy; kernel?: string; cmdline?: string },
): Plan {
  const host = new DenoHost();
  const path = file.startsWith("/") ? file : GUESTS + file;
  const source = text ?? host.readFile(path);
  if (source === undefined) throw new Error(`cannot read ${path}`);
  const r = compile(source, { file: path, host, ...opts });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors.map((d) => `${d.code} ${d.message}`), [], `${file} compiles`);
  assert.equal(r.plans.size, 1);
  return [...r.plans.values()][0];
}

async function boot(plan: Plan): Promise<Run> {
  const chunks: string[] = [];
  const dec = new TextDecoder();
  const m = await createMachine(plan, {
    serial: (b) => chunks.push(dec.decode(b, { stream: true })),
    warn: () => {},
  });
  try {
    const result = await m.run({ timeout: 60 });
    return { plan, result, output: chunks.join("") };
  } finally {
    m.close();
  }
}

async function bothStrategies(
  guest: string,
  file: string,
  opts: { ecamCmdline?: boolean } = {},
): Promise<Record<HoleStrategy, Run>> {
  await buildGuests([guest]);
  const out = {} as Record<HoleStrategy, Run>;
  let cmdline: string | undefined;
  if (opts.ecamCmdline) {
    // The window as the guest must see it, taken from the Plan (not written down here).
    const e = planFor(file, null, {}).hole!.ecam!;
    cmdline = `ecam=0x${e.base.toString(16)} buses=${e.bus_start}-${e.bus_end}`;
  }
  for (const s of ["trap", "shadow"] as const) {
    const plan = planFor(file, null, { holeStrategy: s, kernel: guestPath(guest), cmdline });
    assert.equal(plan.hole?.strategy, s);
    out[s] = await boot(plan);
    assert.equal(
      out[s].result.reason,
      "debug_exit",
      `${guest} under ${s}: ${out[s].result.message}\n${out[s].output}`,
    );
  }
  return out;
}

/** The indented lines bar-size printed under the function's header line. */
function block(out: string, bdf: string): string[] {
  const lines = out.split("\n");
  const at = lines.findIndex((l) => l.startsWith(`${bdf} `));
  assert.ok(at >= 0, `bar-size printed ${bdf}`);
  const res: string[] = [];
  for (let j = at + 1; j < lines.length && lines[j].startsWith("  "); j++) res.push(lines[j]);
  return res;
}

function pciHost(r: RunResult) {
  const d = r.stats.devices.find((x) => x.kind === "pci_host");
  assert.ok(d, "pci_host stats");
  return d;
}

kvmTest("hole: pci-scan prints byte-identical output under trap and shadow", async () => {
  const runs = await bothStrategies("pci-scan", "pci_scan.vmdesc");
  assert.ok(runs.trap.output.includes("pci-scan: ecam and cf8 agree"), runs.trap.output);
  assert.ok(/^ecam 00:04\.0 /m.test(runs.trap.output), "the scan finds the declared functions");
  assert.equal(runs.shadow.output, runs.trap.output);
  assert.equal(runs.shadow.result.exitStatus, runs.trap.result.exitStatus);
  // Same guest, same reads: under trap each ECAM read exits, under shadow none does.
  assert.ok(pciHost(runs.trap.result).model.ecam_reads >= 256 * 32);
  assert.equal(pciHost(runs.shadow.result).model.ecam_reads, 0);
  assert.equal(runs.shadow.result.stats.exits.mmio ?? 0, 0);
});

kvmTest(
  "hole: BAR sizing, COMMAND toggling and absent-function writes agree under trap and shadow",
  async () => {
    const runs = await bothStrategies("bar-size", "pci_scan.vmdesc", { ecamCmdline: true });
    const { plan } = runs.shadow;
    const out = runs.trap.output;
    assert.ok(out.includes(" 0 failures"), out);
    assert.equal(runs.shadow.output, out);
    assert.equal(runs.trap.result.debugValue, 0);
    assert.equal(runs.shadow.result.debugValue, 0);

    // The masks the guest read are the ones the Plan's BAR sizes imply (not just "the same").
    const withBars = plan.pci.filter((f) => f.bars.length > 0);
    assert.ok(withBars.length > 0, "the machine declares BARs");
    for (const f of withBars) {
      for (const b of f.bars) {
        const low = b.kind === "io"
          ? ((~(b.size - 1) & 0xfffffffc) | 1) >>> 0
          : ((~(b.size - 1) & 0xfffffff0) | (b.kind === "mem64" ? 4 : 0) |
            (b.prefetchable ? 8 : 0)) >>> 0;
        const mask = low.toString(16).padStart(8, "0");
        assert.ok(
          block(out, f.bdf).some((l) =>
            l.startsWith(`  bar${b.index} `) && l.includes(` mask ${mask} `)
          ),
          `${f.bdf} bar${b.index} reads back mask ${mask}`,
        );
      }
    }
    // Writes to absent functions never stick, under either strategy.
    const absent = out.split("\n").filter((l) => l.startsWith("absent "));
    assert.equal(absent.length, 2);
    for (const l of absent) assert.match(l, /after writes: ffffffff ffffffff$/);
    // Under shadow, the writes still exited to the host bridge (the slot is read-only) and
    // the reads did not: every value read back came from the shadow pages.
    const sh = pciHost(runs.shadow.result).model;
    assert.ok(sh.ecam_writes > 0, "config writes reach the bridge under shadow");
    assert.equal(sh.ecam_reads, 0, "no ECAM read exits under shadow");
    assert.ok(sh.absent_writes >= 4, "absent-function writes dropped by the bridge");
    assert.ok(pciHost(runs.trap.result).model.absent_writes >= 4);
  },
);

kvmTest(
  "hole: the 8192-read scan of absent functions exits 8192 times under trap, never under shadow",
  async () => {
    const runs = await bothStrategies("scan", "scan.vmdesc", { ecamCmdline: true });
    for (const s of ["trap", "shadow"] as const) {
      // 00:00.0 (the host bridge) is the only present function in the window.
      assert.match(
        runs[s].output,
        /^scan ecam: 8192 reads x 1 passes, 1 not all-ones$/m,
        `${s}: ${runs[s].output}`,
      );
    }
    assert.equal(pciHost(runs.trap.result).model.ecam_reads, 8192);
    assert.equal(pciHost(runs.trap.result).mmio_exits, 8192);
    assert.equal(pciHost(runs.shadow.result).model.ecam_reads, 0);
    assert.equal(pciHost(runs.shadow.result).mmio_exits, 0);
    assert.equal(runs.shadow.result.stats.exits.mmio ?? 0, 0);
  },
);

kvmTest(
  "hole: `buses auto` advertises only the used buses and the guest sees exactly them",
  async () => {
    await buildGuests(["bar-size"]);
    const text = `
machine narrow {
  memory 128 MiB
  pci_hole 0xC000_0000 .. 4 GiB {
    ecam 0xE000_0000 buses auto
  }
  device serial com1 { port 0x3f8 irq 4 }
  device debug_exit { port 0xf4 }
  pci 00:04.0 generic { vendor 0x1234  device 0x5678  class 0x00ff00  bar 0 mem32 4 KiB }
  boot pvh "${guestPath("bar-size")}" { cmdline "ecam=0xe0000000 buses=0-0" }
}
`;
    for (const s of ["trap", "shadow"] as const) {
      const plan = planFor(GUESTS + "auto.vmdesc", text, { holeStrategy: s });
      const ecam = plan.hole!.ecam!;
      assert.deepEqual([ecam.bus_start, ecam.bus_end, ecam.size], [0, 0, 1 << 20]);
      const slot = plan.memslots.find((m) => m.backing.kind === "ones_alias");
      if (s === "shadow") assert.equal(slot?.size, 1 << 20);
      else assert.equal(slot, undefined);
      const run = await boot(plan);
      assert.match(run.output, /^bar-size: 2 functions, 0 failures$/m, run.output);
      assert.match(run.output, /^00:04\.0 1234:5678$/m);
      assert.match(run.output, /^ {2}bar0 c[0-9a-f]{7} mask fffff000 mem32 size 0x00001000 /m);
      assert.match(run.output, /^absent 00:1f\.0 after writes: ffffffff ffffffff$/m);
    }
  },
);
