/**
 * Hover on the language's own words through the real hover handler: keywords and setting
 * names say what they are, list the settings the checker accepts there (from the checker's
 * tables), and link to their section of docs/language.md, which covers every one of them.
 */
import { assert } from "../tests/lsp/assert.ts";
import { type OpenDoc, Workspace } from "./mod.ts";
import { hover } from "./hover.ts";
import { pathToUri } from "./convert.ts";
import { KEYWORDS, LANGUAGE_DOC_URL, languageSections } from "./keywords.ts";
import { BOOT_OPTIONS, DEVICE_KINDS, HOLE_PROPS, MACHINE_PROPS, PCI_KINDS } from "../lang/specs.ts";

const root = new URL("../", import.meta.url).pathname;

const SRC = `import "common.vmdesc"
let ram_size = 128 MiB
machine base {
  cpus 1
  memory ram_size
  pci_hole 0xC000_0000 .. 4 GiB {
    strategy shadow
    ecam 0xE000_0000 buses 0..3
  }
  device serial com1 { port 0x3f8 irq 4 }
  device debug_exit { port 0xf4 }
  pci 00:04.0 generic { vendor 0x1234 device 0x5678 bar 0 mem32 4 KiB }
  cpuid { hide x2apic }
  boot pvh "guest.elf" { cmdline "console=ttyS0" }
}
machine big extends base { memory 2 * ram_size }
`;

function open(): { ws: Workspace; d: OpenDoc } {
  const ws = new Workspace(true);
  const path = `${root}tests/lsp/fixtures/hover_keywords.vmdesc`;
  return { ws, d: ws.open(pathToUri(path), SRC) };
}

/** The hover text at the `n`th occurrence of `word` (plus `into` characters). */
function hoverAt(ws: Workspace, d: OpenDoc, word: string, n = 0, into = 1): string {
  let at = -1;
  for (let i = 0; i <= n; i++) at = SRC.indexOf(word, at + 1);
  assert(at >= 0, `${word} not in the source`);
  const h = hover(ws, { textDocument: { uri: d.uri }, position: d.doc.positionAt(at + into) });
  const v = h?.contents as { value?: string } | undefined;
  return v?.value ?? "";
}

function has(text: string, parts: string[], what: string) {
  for (const p of parts) assert(text.includes(p), `${what}: missing ${JSON.stringify(p)}\n${text}`);
}

Deno.test("hover: keywords say what they are, their settings, and link to the docs", () => {
  const { ws, d } = open();
  const link = (w: string) => `${LANGUAGE_DOC_URL.href}#${w}`;
  has(hoverAt(ws, d, "pci_hole"), [
    "**pci_hole**",
    "32-bit PCI hole",
    "`strategy`",
    "`ecam`",
    link("pci_hole"),
  ], "pci_hole");
  has(hoverAt(ws, d, "ecam"), ["**ecam**", "1 MiB of config space per bus", link("ecam")], "ecam");
  has(hoverAt(ws, d, "buses"), ["**buses**", "inclusive", link("buses")], "buses");
  const serial = hoverAt(ws, d, "device serial");
  has(
    serial,
    ["**device**", "16550A", "`port` (required)", "`irq`", "`output`", link("device")],
    "device serial",
  );
  assert(!serial.includes("- `success`"), "serial's hover lists serial's settings only");
  has(hoverAt(ws, d, "device debug_exit"), ["`success`", "`size`"], "device debug_exit");
  const boot = hoverAt(ws, d, "boot pvh");
  has(boot, ["**boot**", "Options of `pvh`", "`cmdline`", "`initrd`", link("boot")], "boot");
  assert(!boot.includes("- `load`"), "pvh takes no `load`");
  has(hoverAt(ws, d, "machine base"), [
    "**machine**",
    "`cpus`",
    "`memory`",
    "`pci_hole`",
    link("machine"),
  ], "machine");
  has(hoverAt(ws, d, "extends"), ["**extends**", link("extends")], "extends");
  has(hoverAt(ws, d, "cpuid"), ["**cpuid**", "`hide`", link("cpuid")], "cpuid");
  has(hoverAt(ws, d, "hide"), ["**hide**", "`x2apic`", link("hide")], "hide");
  has(
    hoverAt(ws, d, "pci 00"),
    ["**pci**", "`vendor` (required)", "`bar`", link("pci")],
    "pci generic",
  );
  has(hoverAt(ws, d, "bar 0"), ["**bar**", "`mem64`", link("bar")], "bar");
  has(hoverAt(ws, d, "let"), ["**let**", link("let")], "let");
  has(hoverAt(ws, d, "import"), ["**import**", link("import")], "import");
});

Deno.test("hover: setting names say what they take, where they are, and link to the docs", () => {
  const { ws, d } = open();
  has(hoverAt(ws, d, "memory"), [
    "**memory** — machine setting",
    "split around the PCI hole",
    "Value:",
    "#memory",
  ], "memory");
  has(hoverAt(ws, d, "cpus"), ["**cpus**", "number of vCPUs", "#cpus"], "cpus");
  has(hoverAt(ws, d, "strategy"), [
    "**strategy** — `pci_hole` setting",
    "`trap` | `shadow`",
    "#strategy",
  ], "strategy");
  has(hoverAt(ws, d, "port 0x3f8"), [
    "**port** — setting of `device serial`",
    "**Required.**",
    "0x0..0xFFFF",
  ], "port");
  has(hoverAt(ws, d, "irq 4"), ["**irq**", "0..23"], "irq");
  has(hoverAt(ws, d, "cmdline"), ["**cmdline** — option of `boot pvh`", "a string"], "cmdline");
  // `device` inside a generic body is the device-ID setting, not the keyword.
  has(hoverAt(ws, d, "device 0x5678"), [
    "**device** — setting of a `generic` PCI function",
    "device ID",
  ], "device ID");
  // Values keep their own hover (numbers in hex, decimal and sizes).
  has(hoverAt(ws, d, "0x3f8", 0, 2), ["`0x3F8`", "`1016`"], "a value");
});

Deno.test("docs/language.md has a section for every keyword and names every setting", async () => {
  const md = await Deno.readTextFile(LANGUAGE_DOC_URL);
  const sections = languageSections(md);
  for (const k of KEYWORDS) {
    const s = sections.get(k);
    assert(s && s.summary.length > 20 && s.syntax, `docs/language.md: no section for ${k}`);
  }
  for (const table of [MACHINE_PROPS, HOLE_PROPS, BOOT_OPTIONS]) {
    for (const name of Object.keys(table)) assert(sections.has(name), `no section for ${name}`);
  }
  for (const [kind, spec] of [...Object.entries(DEVICE_KINDS), ...Object.entries(PCI_KINDS)]) {
    assert(md.includes(`\`${kind}\``), `docs/language.md does not name the kind ${kind}`);
    for (const name of Object.keys(spec.props)) {
      assert(md.includes(`\`${name}\``), `docs/language.md does not name ${kind}'s ${name}`);
    }
  }
});
