/**
 * Completion offers exactly what the checker accepts: for every kind of body (a machine,
 * the PCI hole, each device kind, each PCI kind, each boot protocol, cpuid), every word
 * that can start a setting anywhere in the language is written into that body and compiled;
 * the words the checker takes (no syntax error, no E0301/E0302/E0502 at the word) must be the
 * completion list there, and a second copy of each must be refused (E0305, W0007) exactly
 * when completion stops offering it once one is written.
 */
import { assertEquals } from "../tests/lsp/assert.ts";
import { candidates, contextAt } from "./completion.ts";
import { compile } from "../lang/mod.ts";
import { createMemoryHost } from "../lang/host_memory.ts";
import * as specs from "../lang/specs.ts";
import type { PropSpec, PropTable } from "../lang/specs.ts";

interface Place {
  name: string;
  /** The file with `@` where a setting goes. */
  template: string;
  table: PropTable;
}

const HOLE = "pci_hole 0xC000_0000 .. 4 GiB { ecam 0xE000_0000 buses auto }";
const PLACES: Place[] = [
  { name: "machine", template: "machine m {\n  @\n}\n", table: specs.MACHINE_PROPS },
  {
    name: "pci_hole",
    template: "machine m {\n  pci_hole 0xC000_0000 .. 4 GiB {\n    @\n  }\n}\n",
    table: specs.HOLE_PROPS,
  },
  ...Object.entries(specs.DEVICE_KINDS).map(([k, s]) => ({
    name: `device ${k}`,
    template: `machine m {\n  device ${k} {\n    @\n  }\n}\n`,
    table: s.props,
  })),
  ...Object.entries(specs.PCI_KINDS).map(([k, s]) => ({
    name: `pci ${k}`,
    template: `machine m {\n  ${HOLE}\n  pci 00:02.0 ${k} {\n    @\n  }\n}\n`,
    table: s.props,
  })),
  ...specs.BOOT_PROTOCOLS.map((p) => ({
    name: `boot ${p}`,
    template: `machine m {\n  boot ${p} "x" {\n    @\n  }\n}\n`,
    table: specs.BOOT_OPTIONS,
  })),
  { name: "cpuid", template: "machine m {\n  cpuid {\n    @\n  }\n}\n", table: {} },
];

/** Every word that starts a setting somewhere, with the first spec that knows it. */
const SPECS = new Map<string, PropSpec>();
for (
  const t of [
    specs.MACHINE_PROPS,
    specs.HOLE_PROPS,
    specs.BOOT_OPTIONS,
    ...Object.values(specs.DEVICE_KINDS).map((d) => d.props),
    ...Object.values(specs.PCI_KINDS).map((p) => p.props),
  ]
) for (const [k, v] of Object.entries(t)) if (!SPECS.has(k)) SPECS.set(k, v);
const WORDS = [
  ...new Set([
    ...SPECS.keys(),
    ...specs.STRUCTURED_SETTINGS,
    ...specs.HOLE_STRUCTURED,
    "bar",
    "hide",
  ]),
];

function value(spec: PropSpec): string {
  switch (spec.type.t) {
    case "int":
      return String(spec.type.min ?? 1n);
    case "string":
      return '"x"';
    case "range":
      return "0x1000_0000 + 4 KiB";
    case "onoff":
      return "on";
    case "enum":
      return spec.type.values[0];
  }
}

/** The setting `word` written in full; `k` makes copies differ where they must. */
function snippet(word: string, place: Place, k: number): string {
  const spec = place.table[word];
  if (spec) return `${word} ${value(spec)}`;
  switch (word) {
    case "pci_hole":
      return "pci_hole 0x8000_0000 .. 4 GiB { }";
    case "device":
      return `device debug_exit d${k} { port ${0x500 + k} }`;
    case "pci":
      return `pci 00:1${k}.0 virtio_rng`;
    case "boot":
      return `boot flat "y${k}" { load 0x10_0000 }`;
    case "cpuid":
      return `cpuid { hide ${specs.CPUID_FEATURES[k]} }`;
    case "ecam":
      return "ecam 0xE000_0000 buses auto";
    case "bar":
      return `bar ${k} mem32 4 KiB`;
    case "hide":
      return `hide ${specs.CPUID_FEATURES[k]}`;
  }
  return `${word} ${value(SPECS.get(word)!)}`;
}

function diagnostics(text: string) {
  return compile(text, { file: "t.vmdesc", host: createMemoryHost() }).diagnostics;
}

/** Whether the checker takes `word` in `place`. */
function accepts(place: Place, word: string): boolean {
  const at = place.template.indexOf("@");
  const text = place.template.replace("@", snippet(word, place, 1));
  return !diagnostics(text).some((d) =>
    d.code === "E0001" ||
    (["E0301", "E0302", "E0502"].includes(d.code) && d.span?.start === at)
  );
}

function offered(text: string, offset: number): string[] {
  return candidates(contextAt(text, offset), { lets: [], machines: [] }).map((c) => c.label)
    .sort();
}

Deno.test("completion offers, in every kind of body, exactly the settings the checker accepts", () => {
  for (const place of PLACES) {
    const want = WORDS.filter((w) => accepts(place, w)).sort();
    const at = place.template.indexOf("@");
    const got = offered(place.template.replace("@", ""), at);
    assertEquals(got, want, `in ${place.name}`);
  }
});

Deno.test("completion stops offering a setting once given exactly when a second is refused", () => {
  for (const place of PLACES) {
    for (const word of WORDS.filter((w) => accepts(place, w))) {
      const once = snippet(word, place, 1);
      const twice = place.template.replace("@", `${once}\n    ${snippet(word, place, 2)}`);
      const refused = diagnostics(twice).some((d) => d.code === "E0305" || d.code === "W0007");
      const withOne = place.template.replace("@", `${once}\n    @`);
      const at = withOne.indexOf("@");
      const stillOffered = offered(withOne.replace("@", ""), at).includes(word);
      assertEquals(stillOffered, !refused, `${word} in ${place.name} after one ${word}`);
    }
  }
});
