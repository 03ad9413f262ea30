/** Virtio devices in the language: settings, placement, conflicts and what the Plan says. */
import { compile, createMemoryHost, type Plan } from "../mod.ts";
import type { Diagnostic } from "../diagnostics/types.ts";

const HOLE = "  pci_hole 0xC000_0000 .. 4 GiB { ecam 0xE000_0000 buses auto }\n";

function run(body: string, opts: { acpi?: boolean; files?: string[]; boot?: string } = {}) {
  const text = `machine m {\n  memory 128 MiB\n  device serial com1 { port 0x3f8 }\n${body}` +
    (opts.acpi === false ? "  acpi off\n" : "") +
    `  ${opts.boot ?? 'boot pvh "g.elf" { cmdline "console=ttyS0" }'}\n}\n`;
  const host = createMemoryHost({ "d/m.vmdesc": text }, ["d/g.elf", ...(opts.files ?? [])]);
  const r = compile(text, { file: "d/m.vmdesc", host });
  return { diags: r.diagnostics, plan: r.plans.get("m") as Plan | undefined };
}

const codes = (ds: Diagnostic[]) => ds.map((d) => d.code);

function eq(a: unknown, b: unknown, what: string) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  }
}

Deno.test("virtio_blk needs `file` (E0303); a missing image is W0008 and still lowers", () => {
  eq(codes(run(`${HOLE}  pci 00:03.0 virtio_blk\n`).diags), ["E0303"], "pci, no file");
  eq(codes(run("  device virtio_blk disk0 {}\n").diags), ["E0303"], "mmio, no file");
  const r = run('  device virtio_blk disk0 { file "img/disk.img" }\n');
  eq(codes(r.diags), ["W0008"], "missing image");
  eq(r.plan?.devices.find((d) => d.id === "disk0")?.virtio?.backing, {
    kind: "file",
    path: "img/disk.img",
    readonly: false,
    serial: "",
  }, "backing, defaults explicit");
  const ok = run('  device virtio_blk disk0 { file "img/disk.img" }\n', {
    files: ["d/img/disk.img"],
  });
  eq(codes(ok.diags), [], "image present: clean");
});

Deno.test("readonly takes on/off, true/false; serial is at most 20 bytes (E0304)", () => {
  const f = { files: ["d/a.img"] };
  const ro = (v: string) =>
    run(`${HOLE}  pci 00:03.0 virtio_blk { file "a.img" readonly ${v} }\n`, f);
  for (const [v, want] of [["on", true], ["true", true], ["off", false], ["false", false]]) {
    const b = ro(v as string).plan!.pci[0].virtio!.backing;
    eq(b.kind === "file" && b.readonly, want, `readonly ${v}`);
  }
  eq(codes(ro("maybe").diags), ["E0304"], "readonly maybe");
  const ser = (s: string) =>
    run(`  device virtio_blk d0 { file "a.img" serial "${s}" }\n`, f).diags;
  eq(codes(ser("x".repeat(20))), [], "20 bytes");
  eq(codes(ser("x".repeat(21))), ["E0304"], "21 bytes");
  // Bytes, not characters: 7 three-byte characters are 21 bytes.
  eq(codes(ser("€".repeat(7))), ["E0304"], "21 bytes of UTF-8");
  eq(codes(run('  device virtio_rng r { serial "x" }\n').diags), ["E0302"], "rng has no serial");
});

Deno.test("a virtio PCI function brings its own BAR: `bar` is E0302; mmio64 moves it up", () => {
  const f = { files: ["d/a.img"] };
  const bar = run(`${HOLE}  pci 00:03.0 virtio_rng { bar 0 mem32 4 KiB }\n`, f);
  eq(codes(bar.diags), ["E0302"], "bar on virtio_rng");
  const low = run(`${HOLE}  pci 00:03.0 virtio_blk { file "a.img" }\n`, f).plan!;
  const b = low.pci[0].bars[0];
  eq([b.index, b.kind, b.size, b.prefetchable], [0, "mem32", 0x8000, false], "32-bit BAR");
  eq(b.address, low.hole!.mmio32.base, "in the 32-bit window");
  const t = low.pci[0];
  eq([t.vendor_id, t.device_id, t.revision, t.subsystem_id], [0x1af4, 0x1042, 1, 0x1100], "IDs");
  const tr = t.virtio!.transport;
  eq(tr.kind === "pci" && [tr.bar, tr.msix.vectors], [0, 2], "transport: BAR 0, 2 vectors");
  const high = run(`${HOLE}  pci 00:03.0 virtio_blk { file "a.img" mmio64 on }\n`, f).plan!;
  const h = high.pci[0].bars[0];
  eq([h.kind, h.address], ["mem64", high.hole!.mmio64!.base], "64-bit BAR above 4 GiB");
});

Deno.test("virtio-mmio devices get pages from 0xFEB0_0000 and free IOAPIC lines", () => {
  const f = { files: ["d/a.img"] };
  const p = run(
    '  device virtio_blk disk0 { file "a.img" }\n  device virtio_rng rng0 {}\n' +
      "  device virtio_rng rng1 { irq 6 }\n",
    f,
  ).plan!;
  const at = (id: string) => {
    const d = p.devices.find((x) => x.id === id)!;
    return [d.mmio[0].base, d.mmio[0].size, d.irq];
  };
  eq(at("disk0"), [0xfeb00000, 4096, 5], "first page, line 5");
  // rng1 asked for 6, so rng0 takes the next free line after 5.
  eq(at("rng0"), [0xfeb01000, 4096, 7], "second page, line 7");
  eq(at("rng1"), [0xfeb02000, 4096, 6], "its own line");
  // With ACPI the DSDT describes them: the command line is left alone.
  eq(p.boot.cmdline, "console=ttyS0", "cmdline with ACPI");
  const off = run('  device virtio_blk disk0 { file "a.img" }\n', { ...f, acpi: false }).plan!;
  eq(
    off.boot.cmdline,
    "console=ttyS0 virtio_mmio.device=4K@0xfeb00000:5",
    "without ACPI, Linux learns of it from the command line",
  );
});

Deno.test("virtio-mmio conflicts: overlaps (E0201), lines (E0203), alignment (E0207)", () => {
  eq(
    codes(
      run(
        "  device virtio_rng a { address 0xD000_0000 }\n  device virtio_rng b { address 0xD000_0000 }\n",
      ).diags,
    ),
    ["E0201"],
    "two devices on one page",
  );
  eq(codes(run("  device virtio_rng a { address 0x10_0000 }\n").diags), ["E0201"], "over RAM");
  eq(
    codes(run(`${HOLE}  device virtio_rng a { address 0xE000_0000 }\n`).diags),
    ["E0201"],
    "over ECAM",
  );
  eq(codes(run("  device virtio_rng a { address 0xFEC0_0000 }\n").diags), ["E0201"], "IOAPIC");
  eq(codes(run("  device virtio_rng a { address 0xD000_0800 }\n").diags), ["E0207"], "aligned");
  eq(codes(run("  device virtio_rng a { irq 4 }\n").diags), ["E0203"], "the UART's line");
  // Without ACPI only 7 ISA lines are free: the eighth device has none.
  const eight = Array.from({ length: 8 }, (_, i) => `  device virtio_rng r${i} {}\n`).join("");
  const none = run(eight, { acpi: false }).diags;
  eq(codes(none), ["E0203"], "no free line without ACPI");
  eq(codes(run(eight).diags), [], "with ACPI, lines 16..23 too");
  // A user page in the middle of the hole shrinks the 32-bit BAR window around it.
  const mid = run(
    `${HOLE}  device virtio_rng a { address 0xC000_0000 }\n  pci 00:03.0 virtio_rng\n`,
  );
  eq(codes(mid.diags), [], "page in the hole");
  const bar = mid.plan!.pci[0].bars[0];
  eq(bar.address >= 0xc0001000, true, "the BAR avoids the device's page");
});

Deno.test("the appended virtio_mmio.device words count toward the command line's limit", () => {
  const many = Array.from({ length: 7 }, (_, i) => `  device virtio_rng r${i} {}\n`).join("");
  const long = "x".repeat(1800);
  const r = run(many, { acpi: false, boot: `boot pvh "g.elf" { cmdline "${long}" }` });
  eq(codes(r.diags), ["E0502"], "too long with the devices");
});

Deno.test("a disk image named by a constant from another folder stays relative to that folder", () => {
  const lib = 'let disk = "images/base.img"\n';
  const main =
    `import "lib/paths.vmdesc"\nmachine m {\n  memory 64 MiB\n  device serial com1 { port 0x3f8 }\n  device virtio_blk d { file disk }\n  boot pvh "g.elf"\n}\n`;
  const host = createMemoryHost({ "d/m.vmdesc": main, "d/lib/paths.vmdesc": lib }, [
    "d/g.elf",
    "d/lib/images/base.img",
  ]);
  const r = compile(main, { file: "d/m.vmdesc", host });
  eq(codes(r.diagnostics), [], "found where the constant was written");
  const b = r.plans.get("m")!.devices.find((x) => x.id === "d")!.virtio!.backing;
  eq(b.kind === "file" && b.path, "lib/images/base.img", "Plan path from the main file");
});

Deno.test("virtio_net: `tap` is required (E0303), the MAC is derived stably when absent", () => {
  eq(codes(run(`${HOLE}  pci 00:06.0 virtio_net\n`).diags), ["E0303"], "pci, no tap");
  eq(codes(run("  device virtio_net eth0 {}\n").diags), ["E0303"], "mmio, no tap");
  const a = run(
    `${HOLE}  pci 00:06.0 virtio_net { tap "vm0" }\n  device virtio_net eth0 { tap "vm1" }\n`,
  );
  eq(codes(a.diags), [], "clean");
  const pciMac = a.plan?.pci.find((f) => f.bdf === "00:06.0")?.virtio?.backing;
  const mmioMac = a.plan?.devices.find((d) => d.id === "eth0")?.virtio?.backing;
  if (pciMac?.kind !== "tap" || mmioMac?.kind !== "tap") throw new Error("tap backings");
  for (const mac of [pciMac.mac, mmioMac.mac]) {
    if (!/^52:54:00(:[0-9a-f]{2}){3}$/.test(mac)) throw new Error(`generated MAC ${mac}`);
  }
  if (pciMac.mac === mmioMac.mac) throw new Error("two devices got one MAC");
  const again = run(
    `${HOLE}  pci 00:06.0 virtio_net { tap "vm0" }\n  device virtio_net eth0 { tap "vm1" }\n`,
  );
  const pciAgain = again.plan?.pci.find((f) => f.bdf === "00:06.0")?.virtio?.backing;
  eq(pciAgain, pciMac, "the same on every compile");
  eq(a.plan?.pci.find((f) => f.bdf === "00:06.0")?.virtio?.queue_sizes, [256, 256], "rx + tx");
  const given = run(`${HOLE}  pci 00:06.0 virtio_net { tap "vm0" mac "52:54:00:AB:cd:EF" }\n`);
  eq(
    given.plan?.pci.find((f) => f.bdf === "00:06.0")?.virtio?.backing,
    { kind: "tap", tap: "vm0", mac: "52:54:00:ab:cd:ef" },
    "given MAC, lower-cased",
  );
});

Deno.test("virtio_net: bad TAP names, bad and group MACs, a TAP or MAC used twice", () => {
  for (const name of ["", "a/b", "a b", "eth0:1", ".", "sixteen-bytes-xx"]) {
    eq(
      codes(run(`  device virtio_net eth0 { tap ${JSON.stringify(name)} }\n`).diags),
      ["E0220"],
      name,
    );
  }
  eq(codes(run('  device virtio_net eth0 { tap "fifteen-bytes-x" }\n').diags), [], "15 bytes fit");
  for (const mac of ["52:54:00:12:34", "52-54-00-12-34-56", "52:54:00:12:34:5g", "525400123456"]) {
    eq(codes(run(`  device virtio_net eth0 { tap "vm0" mac "${mac}" }\n`).diags), ["E0221"], mac);
  }
  const group = run('  device virtio_net eth0 { tap "vm0" mac "ff:ff:ff:ff:ff:ff" }\n').diags;
  eq(codes(group), ["E0222"], "broadcast");
  eq(group[0].fixes?.[0]?.replacement, '"fe:ff:ff:ff:ff:ff"', "the fix clears the group bit");
  eq(codes(run('  device virtio_net eth0 { tap "vm0" mac "00:00:00:00:00:00" }\n').diags), [
    "E0222",
  ], "zero");
  eq(
    codes(
      run(`${HOLE}  pci 00:06.0 virtio_net { tap "vm0" }\n  device virtio_net eth0 { tap "vm0" }\n`)
        .diags,
    ),
    ["E0223"],
    "one tap twice, across transports",
  );
  eq(
    codes(
      run(
        '  device virtio_net a { tap "vm0" mac "52:54:00:00:00:01" }\n  device virtio_net b { tap "vm1" mac "52:54:00:00:00:01" }\n',
      ).diags,
    ),
    ["W0010"],
    "one MAC twice",
  );
});
