/**
 * Hover for the language's own words: keywords (`machine`, `pci_hole`, `ecam`, `device`,
 * `boot`, `cpuid`, …) and setting names (`memory`, `cpus`, `strategy`, `port`, …). Each
 * says what it is (the first paragraph and the syntax of its section in
 * docs/language.md), lists the settings the checker accepts there (from lang/specs.ts,
 * the checker's own tables, so the list cannot drift from what E0302 refuses), and links
 * to the section.
 */
import type * as A from "../lang/ast.ts";
import {
  BAR_KINDS,
  BOOT_OPTIONS,
  BOOT_OPTIONS_BY_PROTOCOL,
  BOOT_PROTOCOLS,
  CPUID_FEATURES,
  DEVICE_KINDS,
  HOLE_PROPS,
  HOLE_STRUCTURED,
  MACHINE_PROPS,
  PCI_KINDS,
  type PropSpec,
  type PropTable,
  STRUCTURED_SETTINGS,
} from "../lang/specs.ts";

export const LANGUAGE_DOC_URL = new URL("../docs/language.md", import.meta.url);

export interface Section {
  /** The first paragraph: what the word is. */
  summary: string;
  /** The first `vmdesc` code block: how it is written. */
  syntax: string | null;
}

/** The `## word` sections of docs/language.md. */
export function languageSections(markdown: string): Map<string, Section> {
  const map = new Map<string, Section>();
  const parts = markdown.split(/^## /m).slice(1);
  for (const part of parts) {
    const nl = part.indexOf("\n");
    const word = part.slice(0, nl).trim();
    const body = part.slice(nl + 1).trim();
    const summary = body.split(/\n\s*\n/)[0].replace(/\s*\n\s*/g, " ").trim();
    const code = /```vmdesc\n([\s\S]*?)```/.exec(body);
    map.set(word, { summary, syntax: code ? code[1].trimEnd() : null });
  }
  return map;
}

let cache: Map<string, Section> | undefined;

function sections(): Map<string, Section> {
  if (!cache) {
    try {
      cache = languageSections(Deno.readTextFileSync(LANGUAGE_DOC_URL));
    } catch {
      cache = new Map(); // without the docs, hover still lists the settings
    }
  }
  return cache;
}

/** The words that are keywords (not settings checked against a table). */
export const KEYWORDS = [
  "machine",
  "extends",
  "import",
  "let",
  "pci_hole",
  "ecam",
  "buses",
  "device",
  "pci",
  "bar",
  "boot",
  "cpuid",
  "hide",
] as const;

const hex = (n: bigint) => "0x" + n.toString(16).toUpperCase();

/** What values a setting takes, in words. */
export function valueText(spec: PropSpec): string {
  const t = spec.type;
  switch (t.t) {
    case "int": {
      const show = (n: bigint) => (t.max !== undefined && t.max <= 255n ? n.toString() : hex(n));
      if (t.min !== undefined && t.max !== undefined) return `${show(t.min)}..${show(t.max)}`;
      return "a number (sizes like `64 MiB` allowed)";
    }
    case "string":
      return "a string";
    case "range":
      return "a range: `a .. b` (end exclusive) or `a + size`";
    case "onoff":
      return "`on` | `off`";
    case "enum":
      return t.values.map((v) => `\`${v}\``).join(" | ");
  }
}

function settingLines(table: PropTable): string[] {
  return Object.entries(table).map(([name, spec]) =>
    `- \`${name}\`${spec.required ? " (required)" : ""}: ${spec.doc} — ${valueText(spec)}`
  );
}

function docLink(word: string): string {
  return `[docs/language.md: ${word}](${LANGUAGE_DOC_URL.href}#${word})`;
}

function head(word: string, what: string): string[] {
  const s = sections().get(word);
  const lines = [`**${word}** — ${what}`];
  if (s) lines.push(s.summary);
  if (s?.syntax) lines.push("```vmdesc\n" + s.syntax + "\n```");
  return lines;
}

/** Where a setting or keyword sits: decides which table applies. */
export type Place =
  | { block: "machine" }
  | { block: "hole" }
  | { block: "device"; kind: string }
  | { block: "pci"; kind: string }
  | { block: "boot"; protocol: string }
  | { block: "cpuid" }
  | { block: "top" };

/** The settings table of a place (what the checker validates a body against). */
export function placeTable(p: Place): PropTable {
  switch (p.block) {
    case "machine":
      return MACHINE_PROPS;
    case "hole":
      return HOLE_PROPS;
    case "device":
      return DEVICE_KINDS[p.kind]?.props ?? {};
    case "pci":
      return PCI_KINDS[p.kind]?.props ?? {};
    case "boot": {
      const allowed = BOOT_OPTIONS_BY_PROTOCOL[p.protocol] ?? Object.keys(BOOT_OPTIONS);
      return Object.fromEntries(Object.entries(BOOT_OPTIONS).filter(([k]) => allowed.includes(k)));
    }
    default:
      return {};
  }
}

const PLACE_NAME: Record<Place["block"], string> = {
  machine: "machine setting",
  hole: "`pci_hole` setting",
  device: "device setting",
  pci: "PCI function setting",
  boot: "boot option",
  cpuid: "`cpuid` setting",
  top: "top level",
};

/** Markdown for a setting name (`memory`, `port`, `strategy`) at `place`. */
export function settingHover(name: string, place: Place): string | null {
  const spec = placeTable(place)[name];
  if (!spec) return null;
  const where = place.block === "device"
    ? `setting of \`device ${place.kind}\``
    : place.block === "pci"
    ? `setting of a \`${place.kind}\` PCI function`
    : place.block === "boot"
    ? `option of \`boot ${place.protocol}\``
    : PLACE_NAME[place.block];
  const lines = head(name, where);
  lines.push(
    `${spec.doc}${spec.required ? " **Required.**" : ""}${
      spec.repeat ? " May be given several times." : ""
    }`,
  );
  lines.push(`Value: ${valueText(spec)}`);
  lines.push(docLink(sections().has(name) ? name : blockDocWord(place)));
  return lines.join("\n\n");
}

function blockDocWord(p: Place): string {
  return p.block === "hole" ? "pci_hole" : p.block === "top" ? "machine" : p.block;
}

/** Markdown for a keyword; `node` is the construct it begins (for its kind or protocol). */
export function keywordHover(word: string, node: A.Node | null): string | null {
  const lines: string[] = [];
  switch (word) {
    case "machine":
      lines.push(...head("machine", "a virtual machine"));
      lines.push(
        "**Settings**",
        [
          ...settingLines(MACHINE_PROPS),
          ...STRUCTURED_SETTINGS.map((s) => `- \`${s}\`: ${sections().get(s)?.summary ?? ""}`),
        ].join("\n"),
      );
      break;
    case "extends":
      lines.push(...head("extends", "build a machine on another"));
      break;
    case "import":
      lines.push(...head("import", "load another file's constants and machines"));
      break;
    case "let":
      lines.push(...head("let", "a named constant"));
      break;
    case "pci_hole":
      lines.push(...head("pci_hole", "machine setting"));
      lines.push(
        "**Settings**",
        [
          ...settingLines(HOLE_PROPS),
          ...HOLE_STRUCTURED.map((s) => `- \`${s}\`: ${sections().get(s)?.summary ?? ""}`),
        ].join("\n"),
      );
      break;
    case "ecam":
      lines.push(...head("ecam", "`pci_hole` setting"));
      break;
    case "buses":
      lines.push(...head("buses", "part of `ecam`"));
      break;
    case "device": {
      lines.push(...head("device", "machine setting: a platform device"));
      const kind = node?.kind === "Device" ? node.deviceKind.name : null;
      const spec = kind ? DEVICE_KINDS[kind] : undefined;
      if (kind && spec) {
        lines.push(
          `**\`${kind}\`**: ${spec.doc}`,
          "**Settings**",
          settingLines(spec.props).join("\n"),
        );
      } else {
        lines.push(
          "**Kinds**",
          Object.entries(DEVICE_KINDS).map(([k, s]) => `- \`${k}\`: ${s.doc}`).join("\n"),
        );
      }
      break;
    }
    case "pci": {
      lines.push(...head("pci", "machine setting: a PCI function"));
      const kind = node?.kind === "Pci" ? node.deviceKind.name : null;
      const spec = kind ? PCI_KINDS[kind] : undefined;
      if (kind && spec) {
        lines.push(
          `**\`${kind}\`**: ${spec.doc}`,
          "**Settings**",
          [
            ...settingLines(spec.props),
            `- \`bar\`: bar INDEX ${BAR_KINDS.join("|")} SIZE [prefetchable]`,
          ].join("\n"),
        );
      } else {
        lines.push(
          "**Kinds**",
          Object.entries(PCI_KINDS).map(([k, s]) => `- \`${k}\`: ${s.doc}`).join("\n"),
        );
      }
      break;
    }
    case "bar":
      lines.push(...head("bar", "PCI function setting"));
      lines.push(`Kinds: ${BAR_KINDS.map((k) => `\`${k}\``).join(", ")}`);
      break;
    case "boot": {
      lines.push(...head("boot", "machine setting: the boot payload"));
      const protocol = node?.kind === "Boot" ? node.protocol.name : null;
      if (protocol && BOOT_OPTIONS_BY_PROTOCOL[protocol]) {
        lines.push(
          `**Options of \`${protocol}\`**`,
          settingLines(placeTable({ block: "boot", protocol })).join("\n"),
        );
      } else {
        lines.push(
          "**Protocols**",
          BOOT_PROTOCOLS.map((p) => `- \`${p}\`: ${BOOT_OPTIONS_BY_PROTOCOL[p].join(", ")}`)
            .join("\n"),
        );
      }
      break;
    }
    case "cpuid":
      lines.push(...head("cpuid", "machine setting"));
      lines.push("**Settings**", `- \`hide\`: ${sections().get("hide")?.summary ?? ""}`);
      break;
    case "hide":
      lines.push(...head("hide", "`cpuid` setting"));
      lines.push(`Known features: ${CPUID_FEATURES.map((f) => `\`${f}\``).join(", ")}`);
      break;
    default:
      return null;
  }
  lines.push(docLink(word));
  return lines.join("\n\n");
}

/**
 * The keyword or setting name under the cursor, from the AST path at the offset and the
 * word there: the markdown, or null when the word is something else (a value, a name).
 */
export function languageWordHover(
  path: A.Node[],
  word: { text: string; start: number },
): string | null {
  // Innermost first: the construct whose text the word is part of.
  for (let i = path.length - 1; i >= 0; i--) {
    const n = path[i];
    if (n.kind === "Prop") {
      if (n.name.span.start !== word.start) return null; // a value, not the name
      return settingHover(n.name.name, placeOf(path.slice(0, i)));
    }
    const begins = n.span.start === word.start;
    switch (n.kind) {
      case "Machine":
        if (word.text === "machine" && begins) return keywordHover("machine", n);
        if (word.text === "extends" && n.base) return keywordHover("extends", n);
        return null;
      case "PciHole":
      case "Device":
      case "Pci":
      case "Boot":
      case "Cpuid":
      case "Import":
      case "Let":
      case "Bar":
        return begins ? keywordHover(word.text, n) : null;
      case "Ecam":
        if (word.text === "ecam" && begins) return keywordHover("ecam", n);
        if (word.text === "buses") return keywordHover("buses", n);
        return null;
      case "CpuidHide":
        return word.text === "hide" && begins ? keywordHover("hide", n) : null;
      default:
        continue; // inside an expression: look further out
    }
  }
  return null;
}

/** The place of a setting from the constructs around it. */
function placeOf(path: A.Node[]): Place {
  for (let i = path.length - 1; i >= 0; i--) {
    const n = path[i];
    switch (n.kind) {
      case "Device":
        return { block: "device", kind: n.deviceKind.name };
      case "Pci":
        return { block: "pci", kind: n.deviceKind.name };
      case "Boot":
        return { block: "boot", protocol: n.protocol.name };
      case "PciHole":
        return { block: "hole" };
      case "Cpuid":
        return { block: "cpuid" };
      case "Machine":
        return { block: "machine" };
    }
  }
  return { block: "top" };
}
