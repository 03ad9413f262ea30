import { assertEquals } from "../tests/lsp/assert.ts";
import { candidates, contextAt } from "./completion.ts";
import { BOOT_OPTIONS_BY_PROTOCOL, DEVICE_KINDS, PCI_KINDS } from "../lang/specs.ts";

const names = { lets: [{ name: "ram_size", value: 128n << 20n }], machines: ["base", "big"] };

/** Labels offered at the `|` in `src`. */
function at(src: string): string[] {
  const offset = src.indexOf("|");
  const text = src.slice(0, offset) + src.slice(offset + 1);
  return candidates(contextAt(text, offset), names).map((c) => c.label).sort();
}

Deno.test("completion: top level and machine body", () => {
  assertEquals(at("|"), ["import", "let", "machine"]);
  assertEquals(at("let a = 1\nma|"), ["import", "let", "machine"]);
  const body = at("machine m {\n  |\n}");
  for (const k of ["cpus", "memory", "ram", "acpi", "pci_hole", "device", "pci", "boot", "cpuid"]) {
    if (!body.includes(k)) throw new Error(`machine body lacks ${k}: ${body}`);
  }
  // After a complete setting on the same line, another setting may follow (not that one:
  // a second `cpus` would be W0007).
  assertEquals(
    at("machine m {\n  cpus 1 |\n}"),
    at("machine m {\n  |\n}").filter((l) => l !== "cpus"),
  );
});

Deno.test("completion: kinds after device and after a PCI address", () => {
  assertEquals(at("machine m {\n  device |"), Object.keys(DEVICE_KINDS).sort());
  assertEquals(at("machine m {\n  device se|"), Object.keys(DEVICE_KINDS).sort());
  assertEquals(at("machine m {\n  pci 00:1f.7 |"), Object.keys(PCI_KINDS).sort());
  // `device` inside a generic PCI body is the device-ID property: no kinds there.
  assertEquals(at("machine m {\n  pci 00:03.0 generic { vendor 0x1af4 device |"), ["ram_size"]);
});

Deno.test("completion: properties valid inside a block for its kind", () => {
  assertEquals(
    at("machine m {\n  device serial com1 { |"),
    Object.keys(DEVICE_KINDS.serial.props).sort(),
  );
  assertEquals(at("machine m {\n  device debug_exit {\n    |"), ["port", "size", "success"]);
  // A virtio function brings its own BAR: no `bar` there; a generic function takes them.
  assertEquals(
    at("machine m {\n  pci 00:02.0 virtio_rng { |"),
    Object.keys(PCI_KINDS.virtio_rng.props).sort(),
  );
  assertEquals(
    at("machine m {\n  pci 00:04.0 generic { |"),
    [...Object.keys(PCI_KINDS.generic.props), "bar"].sort(),
  );
  assertEquals(
    at('machine m {\n  boot flat "x.bin" { |'),
    [...BOOT_OPTIONS_BY_PROTOCOL.flat].sort(),
  );
  assertEquals(at('machine m {\n  boot pvh "x.elf" { |'), [...BOOT_OPTIONS_BY_PROTOCOL.pvh].sort());
  assertEquals(at("machine m {\n  pci_hole 0xC000_0000 .. 4 GiB {\n    |"), ["ecam", "strategy"]);
  assertEquals(at("machine m {\n  cpuid { |"), ["hide"]);
  // A closed block returns to the machine body.
  assertEquals(at("machine m {\n  device serial { port 0x3f8 }\n  |").includes("memory"), true);
});

Deno.test("completion: values — strategies, protocols, BAR kinds, enums, let names", () => {
  assertEquals(at("machine m {\n  pci_hole 0 .. 4 GiB { strategy |"), ["shadow", "trap"]);
  assertEquals(at("machine m {\n  boot |"), ["flat", "linux", "pvh"]);
  assertEquals(at("machine m {\n  pci 00:03.0 generic { bar 0 |"), ["io", "mem32", "mem64"]);
  assertEquals(at('machine m {\n  boot flat "x" { mode |'), ["protected", "real"]);
  assertEquals(at("machine m {\n  acpi |"), ["off", "on"]);
  assertEquals(at("machine m {\n  memory |"), ["ram_size"]);
  assertEquals(at("machine m {\n  memory 2 * |"), ["ram_size"]);
  assertEquals(at("let x = |"), ["ram_size"]);
  assertEquals(at("machine m {\n  pci_hole 0 .. 4 GiB { ecam |"), ["ram_size"]);
  assertEquals(at("machine big extends |"), ["base", "big"]);
  assertEquals(at("machine m {\n  pci_hole 0 .. 4 GiB { ecam 0 buses |"), ["auto"]);
});

Deno.test("completion: nothing inside comments, strings or new names", () => {
  assertEquals(at("// device |"), []);
  assertEquals(at("/* machine m {\n  dev| */"), []);
  assertEquals(at('machine m {\n  boot pvh "gue|"'), []);
  assertEquals(at("machine |"), []);
  assertEquals(at("let |"), []);
  // Braces inside strings and comments do not open blocks.
  assertEquals(at('machine m {\n  boot pvh "{" // {\n  |').includes("memory"), true);
});

Deno.test("completion: not what this body already gives, unless it may repeat", () => {
  // Before and after the cursor, on the same line or others; nested blocks do not count.
  assertEquals(at("machine m {\n  device serial com1 {\n    port 0x3f8 irq 4\n    |"), [
    "input",
    "output",
  ]);
  assertEquals(at("machine m {\n  device serial com1 {\n    |\n    irq 4 port 0x3f8\n  }\n}"), [
    "input",
    "output",
  ]);
  assertEquals(at("machine m {\n  device serial { port 0x3f8 o| irq 3 }"), ["input", "output"]);
  // `irq` named as a value (a constant called irq) is not the setting.
  assertEquals(at('machine m {\n  device serial { port irq output "x"\n    |'), ["input", "irq"]);
  const machine = at(
    "machine m {\n  cpus 1\n  memory 2 * x\n  ram 0 .. 1 MiB\n  pci_hole 0 .. 4 GiB { strategy trap }\n" +
      '  device serial { port 0x3f8 }\n  |\n  boot pvh "x"\n}',
  );
  assertEquals(machine, ["acpi", "cpuid", "device", "pci", "ram"]);
  assertEquals(at("machine m {\n  pci_hole 0 .. 4 GiB {\n    ecam 0 buses auto\n    |"), [
    "strategy",
  ]);
  assertEquals(
    at("machine m {\n  pci 00:03.0 generic { vendor 1 device 2 bar 0 io 16 |"),
    ["bar", "class", "irq", "pin", "revision", "subsystem", "subsystem_vendor"],
  );
  assertEquals(at('machine m {\n  boot pvh "x" { cmdline "c" |'), ["initrd"]);
  assertEquals(at("machine m {\n  cpuid { hide x2apic |"), ["hide"]);
});

Deno.test("completion: constants of the type the setting takes, string constants where a string goes", async () => {
  const { compile } = await import("../lang/mod.ts");
  const { createMemoryHost } = await import("../lang/host_memory.ts");
  const LETS = 'let com1 = 0x3f8\nlet console = "console=ttyS0"\n';
  const typed = {
    lets: [
      { name: "com1", value: 0x3f8n },
      { name: "console", value: "console=ttyS0" },
      { name: "broken", value: null },
    ],
    machines: [],
  };
  const offered = (src: string) => {
    const offset = src.indexOf("|");
    const text = src.slice(0, offset) + src.slice(offset + 1);
    return candidates(contextAt(text, offset), typed);
  };
  const labels = (src: string) => offered(src).map((c) => c.label).sort();
  // Where the checker takes the constant: the machine (complete otherwise) has no error.
  const accepted = (src: string) =>
    ["com1", "console"].filter((name) => {
      const r = compile(LETS + src.replace("|", name), {
        file: "t.vmdesc",
        host: createMemoryHost(),
      });
      return !r.diagnostics.some((d) => d.severity === "error");
    });
  const MACHINE = (body: string, boot = 'boot pvh "x.elf"') =>
    `machine m {\n  memory 64 MiB\n  ${body}\n  ${boot}\n}\n`;
  const places = [
    MACHINE("", 'boot pvh "x.elf" { cmdline | }'),
    MACHINE("", 'boot pvh "x.elf" { cmdline console + | }'),
    MACHINE("", 'boot pvh "x.elf" { initrd | }'),
    MACHINE("device serial com1 { port | }"),
    MACHINE("device serial com1 { port 0x3f0 + | }"),
    'machine m {\n  memory | * 1 MiB\n  boot pvh "x.elf"\n}\n',
  ];
  for (const src of places) {
    assertEquals(accepted(src).length, 1, `one of the two types fits: ${src}`);
    // The broken constant has no type to go by: offered everywhere.
    assertEquals(labels(src), ["broken", ...accepted(src)].sort(), src);
  }
  assertEquals(labels("let x = |"), ["broken", "com1", "console"]);
  const detail = offered(MACHINE("", 'boot pvh "x.elf" { cmdline | }'))
    .find((c) => c.label === "console")?.detail;
  assertEquals(detail, '= "console=ttyS0"');
});
