/**
 * compile(): every example lowers to a schema-valid Plan, and the Plan says what the
 * language promises (RAM split around the hole, shadow slot over exactly the ECAM window,
 * present pages, the implicit host bridge, extends merging, compile options).
 */
import { compile, compileFiles, createMemoryHost, type Plan } from "./mod.ts";
import { planSchemaErrors } from "../plan/validate.ts";

const EX = decodeURIComponent(new URL("../examples/", import.meta.url).pathname);
function exampleHost() {
  const files: Record<string, string> = {};
  for (const e of Deno.readDirSync(EX)) {
    if (e.name.endsWith(".vmdesc")) {
      files[`examples/${e.name}`] = Deno.readTextFileSync(EX + e.name);
    }
  }
  // Boot payloads are build outputs (or a kernel passed with --kernel): declare them present.
  const host = createMemoryHost(files, [
    "examples/guests/build/hello.elf",
    "examples/guests/build/pci-scan.elf",
    "examples/guests/build/disk.img",
    "examples/guests/build/virtio-blk.elf",
    "examples/vmlinuz",
    "examples/linux/initramfs/build/initramfs.cpio.gz",
  ]);
  return { files, host };
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}
function eq<T>(actual: T, expected: T, what: string) {
  const big = (_k: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v);
  const a = JSON.stringify(actual, big);
  const e = JSON.stringify(expected, big);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function one(
  text: string,
  opts: Partial<Parameters<typeof compile>[1]> = {},
  extra: Record<string, string> = {},
) {
  const host = createMemoryHost({ "m.vmdesc": text, ...extra }, ["guest.elf", "/abs/vmlinuz"]);
  return compile(text, { file: "m.vmdesc", host, ...opts });
}

function checkPlanInvariants(p: Plan) {
  const errors = planSchemaErrors(p);
  assert(errors.length === 0, `${p.machine}: schema: ${errors.join("; ")}`);
  p.memslots.forEach((m, i) => eq(m.slot, i, `${p.machine} memslot ids in order`));
  for (let i = 1; i < p.e820.length; i++) {
    const a = p.e820[i - 1];
    assert(a.addr + a.size <= p.e820[i].addr, `${p.machine}: e820 sorted and disjoint at ${i}`);
  }
  const slots = [...p.memslots].sort((a, b) => a.guest_phys - b.guest_phys);
  for (let i = 1; i < slots.length; i++) {
    assert(
      slots[i - 1].guest_phys + slots[i - 1].size <= slots[i].guest_phys,
      `${p.machine}: memslots disjoint`,
    );
  }
  for (const f of p.pci) {
    for (const b of f.bars) {
      assert(b.address % b.size === 0, `${f.bdf} BAR ${b.index} naturally aligned`);
    }
  }
}

Deno.test("every example compiles clean to schema-valid Plans", () => {
  const { files, host } = exampleHost();
  // Checked as a folder is (`vmdesc check examples/`): common.vmdesc is extends.vmdesc's library.
  const inputs = Object.entries(files).map(([file, text]) => ({ file, text }));
  const results = compileFiles(inputs, { host });
  for (const [k, { file }] of inputs.entries()) {
    const r = results[k];
    eq(r.diagnostics.map((d) => `${d.code} ${d.message}`), [], `${file} diagnostics`);
    assert(r.plans.size > 0, `${file}: no plan`);
    for (const p of r.plans.values()) checkPlanInvariants(p);
  }
});

Deno.test("the schema rejects a Plan with a missing or extra field", () => {
  const { files, host } = exampleHost();
  const p = compile(files["examples/hello.vmdesc"], { file: "examples/hello.vmdesc", host }).plans
    .get("hello")!;
  const missing = structuredClone(p) as Partial<Plan>;
  delete missing.e820;
  assert(planSchemaErrors(missing).length > 0, "missing e820 must fail");
  const extra = { ...structuredClone(p), surprise: 1 };
  assert(planSchemaErrors(extra).length > 0, "an unknown field must fail");
});

Deno.test("linux: 4 GiB split around a 1 GiB hole, ECAM narrowed by `buses auto`", () => {
  const { files, host } = exampleHost();
  const p = compile(files["examples/linux.vmdesc"], { file: "examples/linux.vmdesc", host }).plans
    .get("linux")!;
  eq(p.memslots.map((m) => [m.name, m.guest_phys, m.size]), [
    ["ram-low", 0, 3 * 2 ** 30],
    ["ram-high", 2 ** 32, 2 ** 30],
    ["ecam-shadow", 0xe0000000, 2 ** 20],
  ], "memslots");
  eq(
    [p.hole!.ecam!.bus_start, p.hole!.ecam!.bus_end, p.hole!.ecam!.shadow_slot],
    [0, 0, 2],
    "ecam",
  );
  eq(p.cpus.cpuid.hide, ["cx16"], "cpuid hide");
  eq(p.boot.cmdline, "console=ttyS0 earlyprintk=serial", "cmdline");
  assert(p.acpi !== null, "linux boots get ACPI");
  eq(p.e820.filter((e) => e.type === "ram").map((e) => [e.addr, e.size]), [
    [0, 0x9fc00],
    [0x100000, 3 * 2 ** 30 - 0x100000],
    [2 ** 32, 2 ** 30],
  ], "e820 RAM");
  assert(
    p.e820.some((e) => e.type === "reserved" && e.addr === 0xe0000000 && e.size === 2 ** 20),
    "ECAM reserved in e820",
  );
});

Deno.test("scan: shadow slot covers exactly the ECAM window with present pages; pci_host claims", () => {
  const { files, host } = exampleHost();
  const p = compile(files["examples/scan.vmdesc"], { file: "examples/scan.vmdesc", host }).plans
    .get("scan")!;
  const slot = p.memslots.find((m) => m.name === "ecam-shadow")!;
  eq(
    [slot.guest_phys, slot.size, slot.flags],
    [0xe0000000, 256 * 2 ** 20, ["readonly"]],
    "shadow slot",
  );
  assert(slot.backing.kind === "ones_alias", "ones_alias backing");
  eq(slot.backing.chunk_size, 2 ** 20, "chunk size");
  eq(slot.size / slot.backing.chunk_size, 256, "256 MiB of ECAM is 256 mappings");
  eq(slot.backing.present, [
    // The runtime's host bridge answers at 00:00.0, so it gets a page too.
    { offset: 0, bdf: "00:00.0" },
    { offset: 2 << 15, bdf: "00:02.0" },
    { offset: 3 << 15, bdf: "00:03.0" },
    { offset: 4 << 15, bdf: "00:04.0" },
  ], "present pages");
  const host_ = p.devices.find((d) => d.id === "pci_host")!;
  eq(host_.ports, [{ base: 0xcf8, size: 8 }], "pci_host ports");
  eq(host_.mmio, [{ base: 0xe0000000, size: 256 * 2 ** 20 }], "pci_host mmio");
  const rng = p.pci.find((f) => f.bdf === "00:02.0")!;
  eq(
    [rng.vendor_id, rng.device_id, rng.class_code, rng.revision],
    [0x1af4, 0x1044, 0x00ff00, 1],
    "virtio_rng: modern IDs (0x1040 + type 4), revision 1",
  );
  eq(rng.bars.map((b) => [b.index, b.kind, b.size]), [[0, "mem32", 0x8000]], "its own BAR");
  const g = p.pci.find((f) => f.bdf === "00:04.0")!;
  const w = p.hole!.mmio32;
  for (const b of g.bars.filter((b) => b.kind === "mem32")) {
    assert(b.address >= w.base && b.address + b.size <= w.base + w.size, "mem32 BAR inside mmio32");
  }
  assert(w.base + w.size <= 0xe0000000 || w.base >= 0xf0000000, "mmio32 avoids ECAM");
  eq(g.bars.find((b) => b.kind === "io")!.address, 0xc000, "io BAR at the start of the io window");
});

Deno.test("extends + import: later settings win, devices merge by name", () => {
  const { files, host } = exampleHost();
  const r = compile(files["examples/extends.vmdesc"], { file: "examples/extends.vmdesc", host });
  const small = r.plans.get("small")!;
  const big = r.plans.get("big")!;
  eq(small.memslots[0].size, 64 * 2 ** 20, "small memory overrides");
  eq(
    small.devices.map((d) => d.id),
    ["com1", "debug_exit", "pci_host", "acpi_sleep"],
    "small devices from base, then the ACPI sleep registers",
  );
  eq(big.cpus.count, 2, "big cpus");
  eq(big.hole!.strategy, "trap", "big strategy");
  eq([big.hole!.ecam!.bus_start, big.hole!.ecam!.bus_end], [0, 7], "ecam inherited from base");
  eq(big.hole!.ecam!.shadow_slot, null, "no shadow slot under trap");
  eq(big.memslots.map((m) => m.name), ["ram-low", "ram-high"], "big memslots");
  eq(big.pci.map((f) => f.bdf), ["00:02.0", "00:03.0"], "big pci");
  eq(big.boot.path, "guests/build/pci-scan.elf", "big boot path as written");
  assert(!r.plans.has("base"), "imported machines are not lowered");
});

const SMALL = `machine m {
  memory 128 MiB
  pci_hole 0xC000_0000 .. 4 GiB { ecam 0xE000_0000 buses 0..3 }
  device serial com1 { port 0x3f8 }
  pci 00:02.0 virtio_rng
  pci 00:02.1 virtio_net { tap "vm0" }
  boot pvh "guest.elf" { cmdline "a" }
}
`;

Deno.test("compile options: machine, holeStrategy, kernel, cmdline", () => {
  const trap = one(SMALL, { holeStrategy: "trap" }).plans.get("m")!;
  eq(trap.hole!.strategy, "trap", "strategy override");
  eq(trap.memslots.length, 1, "no shadow slot");
  const k = one(SMALL, { kernel: "/abs/vmlinuz", cmdline: "console=ttyS0" });
  eq(k.diagnostics, [], "no W0006 for an existing --kernel");
  eq([k.plans.get("m")!.boot.path, k.plans.get("m")!.boot.cmdline], [
    "/abs/vmlinuz",
    "console=ttyS0",
  ], "overrides");
  const bad = one(SMALL, { machine: "n" });
  eq(bad.diagnostics.map((d) => [d.code, d.span]), [["E0105", null]], "unknown --machine");
  eq(bad.diagnostics[0].hint, "did you mean `m`?", "suggestion");
  const p = one(SMALL).plans.get("m")!;
  eq(p.pci.map((f) => f.header_type), [0x80, 0], "multi-function bit on function 0");
  eq(p.pci[1].irq, 16 + ((2 + 1 - 1) % 4), "default INTx routing");
});

Deno.test("flat boot and explicit RAM", () => {
  const r = one(`machine f {
  ram 0 .. 16 MiB
  ram 4 GiB + 2 MiB
  device serial com1 { port 0x3f8 }
  acpi off
  boot flat "guest.elf" { load 0x7C00 mode real }
}
`);
  eq(r.diagnostics, [], "clean");
  const p = r.plans.get("f")!;
  checkPlanInvariants(p);
  eq(p.memslots.map((m) => [m.name, m.guest_phys, m.size]), [["ram-0", 0, 16 * 2 ** 20], [
    "ram-1",
    2 ** 32,
    2 * 2 ** 20,
  ]], "ram");
  eq([p.boot.load_address, p.boot.entry, p.boot.cpu_mode], [0x7c00, 0x7c00, "real"], "flat");
  const high = one(`machine f {
  memory 16 MiB
  device serial com1 { port 0x3f8 }
  boot flat "guest.elf" { load 0x10_0000 mode real }
}
`);
  eq(high.diagnostics.map((d) => d.code), ["E0502"], "real-mode entry above 64 KiB");
  eq(p.acpi, null, "no ACPI for flat");
  eq(p.hole, null, "no hole");
});

Deno.test("constants: 64-bit arithmetic, units, shifts", () => {
  const r = one(`let a = 0xE000_0000
let b = (a - 3 GiB) >> 1
let c = 1 << 63
let d = 0b1010 * 0o17 + 1_000
machine m {
  memory b + 0 * c * d
  device serial com1 { port 0x3f8 }
  boot pvh "guest.elf"
}
`);
  eq(r.diagnostics, [], "clean");
  eq(r.program.lets.get("b")!.value, 0x10000000n, "b");
  eq(r.program.lets.get("c")!.value, 1n << 63n, "c");
  eq(r.program.lets.get("d")!.value, 10n * 15n + 1000n, "d");
  const over = one(`let c = 1 << 64
machine m { memory 1 GiB boot pvh "guest.elf" device serial s { port 0x3f8 } }
`);
  eq(over.diagnostics.map((d) => d.code), ["W0005", "E0003"], "1 << 64 overflows");
  const later = one(`let a = b
let b = 1
machine m { memory a boot pvh "guest.elf" device serial s { port 0x3f8 } }
`);
  assert(
    later.diagnostics[0].code === "E0101" && /defined later/.test(later.diagnostics[0].hint ?? ""),
    "defined later hint",
  );
});

Deno.test("a boot path inherited from a file in another directory is rebased on the main file", () => {
  const base = `machine base {
  memory 64 MiB
  device serial com1 { port 0x3f8 }
  boot pvh "guests/g.elf" { initrd "../initrd.img" }
}
`;
  const main = `import "../../lib/base.vmdesc"
machine m extends base { cpus 2 }
`;
  const host = createMemoryHost(
    { "lib/base.vmdesc": base, "a/b/main.vmdesc": main },
    ["lib/guests/g.elf", "initrd.img"],
  );
  const r = compile(main, { file: "a/b/main.vmdesc", host });
  eq(r.diagnostics, [], "payloads found where the base file says");
  const p = r.plans.get("m")!;
  eq([p.boot.path, p.boot.initrd], ["../../lib/guests/g.elf", "../../initrd.img"], "rebased paths");
});

Deno.test("an inherited initrd keeps the directory of the file that wrote it when the child overrides `boot`", () => {
  // Issue 14, item 1: the child's `boot` line (same protocol) merges the base's options; the
  // base's `initrd` was then resolved against the child's directory.
  const base = `machine base2 {
  memory 64 MiB
  device serial com1 { port 0x3f8 output "logs/console.txt" }
  boot pvh "kernels/vmlinux" {
    cmdline "console=ttyS0"
    initrd "initrd.img"
  }
}
`;
  const main = `import "lib2/base.vmdesc"
machine c2 extends base2 {
  boot pvh "vmlinux-debug" { cmdline "console=ttyS0 debug" }
}
`;
  const host = createMemoryHost(
    { "lib2/base.vmdesc": base, "main.vmdesc": main },
    ["lib2/kernels/vmlinux", "vmlinux-debug", "lib2/initrd.img"],
  );
  const r = compile(main, { file: "main.vmdesc", host });
  eq(r.diagnostics.map((d) => `${d.code} ${d.message}`), [], "no W0006: initrd.img is in lib2/");
  const p = r.plans.get("c2")!;
  eq(
    [p.boot.path, p.boot.initrd, p.boot.cmdline],
    ["vmlinux-debug", "lib2/initrd.img", "console=ttyS0 debug"],
    "the child's payload, the base's initrd from the base's directory",
  );
  eq(
    p.devices.find((d) => d.kind === "serial")?.props.output,
    "lib2/logs/console.txt",
    "an inherited serial output file, from the base's directory",
  );
});

Deno.test("compileFiles: a file another one imports is a library (issue 14, item 5)", () => {
  const files = {
    "d/consts.vmdesc": "let base_mem = 64 MiB\nlet serial_port = 0x3f8\nlet spare = 1\n",
    "d/more.vmdesc": 'import "consts.vmdesc"\nlet twice = base_mem * 2\n',
    "d/main.vmdesc":
      'import "more.vmdesc"\nmachine m {\n  memory twice\n  device serial com1 { port serial_port }\n  boot pvh "guest.elf"\n}\n',
    "d/alone.vmdesc": "let nothing = 1\n",
  };
  const host = createMemoryHost(files, ["d/guest.elf"]);
  const inputs = Object.entries(files).map(([file, text]) => ({ file, text }));
  const got = compileFiles(inputs, { host }).map((r, k) =>
    `${inputs[k].file}: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`
  );
  eq(got, [
    // Imported (transitively) by main: no E0404; only the constant nobody uses is W0005.
    "d/consts.vmdesc: W0005 the constant `spare` is never used",
    "d/more.vmdesc: ",
    "d/main.vmdesc: ",
    // Imported by nobody: still a file that defines nothing.
    "d/alone.vmdesc: E0404 this file defines no machine; W0005 the constant `nothing` is never used",
  ], "libraries checked as libraries");
});

Deno.test("acpi: machines with ACPI get the sleep registers at 0x600; a device there is E0202", () => {
  const host = createMemoryHost({}, ["guest.elf", "guest.bin"]);
  const machine = (extra: string, boot = `boot pvh "guest.elf"`) =>
    `machine m {\n  memory 64 MiB\n  device serial com1 { port 0x3f8 }\n${extra}\n  ${boot}\n}\n`;
  const sleepOf = (text: string) => {
    const r = compile(text, { file: "m.vmdesc", host });
    return { r, dev: r.plans.get("m")?.devices.find((d) => d.kind === "acpi_sleep") };
  };
  const on = sleepOf(machine(""));
  eq(on.dev?.ports, [{ base: 0x600, size: 2 }], "ACPI on: the sleep registers");
  eq(on.dev?.id, "acpi_sleep", "its id");
  eq(sleepOf(machine("  acpi off")).dev, undefined, "acpi off: none");
  eq(sleepOf(machine("", `boot flat "guest.bin" { load 0x10_0000 }`)).dev, undefined, "flat: none");
  // A user device on those ports: an error at its port, with ACPI only.
  const clash = machine("  device debug_exit { port 0x601 }");
  const { r } = sleepOf(clash);
  const e = r.diagnostics.find((d) => d.code === "E0202");
  assert(e, "E0202 for a device on the sleep registers");
  assert(/overlap the ACPI sleep registers \(0x600\.\.0x601\)/.test(e.message), e.message);
  eq(clash.slice(e.span!.start, e.span!.end).startsWith("0x601"), true, "the span is the port");
  eq(r.plans.size, 0, "no Plan");
  eq(
    sleepOf(machine("  acpi off\n  device debug_exit { port 0x601 }")).r.diagnostics.filter((d) =>
      d.severity === "error"
    ).length,
    0,
    "without ACPI the ports are free",
  );
});
