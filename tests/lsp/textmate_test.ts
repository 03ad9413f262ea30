/**
 * The VS Code TextMate grammar, loaded the way VS Code loads it (vscode-textmate on the
 * oniguruma wasm shipped in the npm package), tokenizing real example text.
 */
import { createRequire } from "node:module";
import { fileURLToPath as fromFileUrl } from "node:url";
import vsctm from "vscode-textmate";
import type { IGrammar } from "vscode-textmate";
import oniguruma from "vscode-oniguruma";

const require = createRequire(import.meta.url);
const root = new URL("../../", import.meta.url);
const grammarPath = new URL("editors/vscode/syntaxes/vmdesc.tmLanguage.json", root);

let grammarPromise: Promise<IGrammar> | undefined;

function loadGrammar(): Promise<IGrammar> {
  grammarPromise ??= (async () => {
    const wasm = await Deno.readFile(require.resolve("vscode-oniguruma/release/onig.wasm"));
    await oniguruma.loadWASM(wasm.buffer);
    const onigLib = Promise.resolve({
      createOnigScanner: (sources: string[]) => new oniguruma.OnigScanner(sources),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    });
    const registry = new vsctm.Registry({
      onigLib,
      loadGrammar: async (scopeName: string) => {
        if (scopeName !== "source.vmdesc") return null;
        const text = await Deno.readTextFile(grammarPath);
        return vsctm.parseRawGrammar(text, fromFileUrl(grammarPath));
      },
    });
    const grammar = await registry.loadGrammar("source.vmdesc");
    if (!grammar) throw new Error("grammar did not load");
    return grammar;
  })();
  return grammarPromise;
}

interface Tok {
  line: number;
  text: string;
  scopes: string[];
}

async function tokenize(text: string): Promise<Tok[]> {
  const grammar = await loadGrammar();
  let state = vsctm.INITIAL;
  const out: Tok[] = [];
  text.split("\n").forEach((line, i) => {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      out.push({ line: i + 1, text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
    }
    state = r.ruleStack;
  });
  return out;
}

/** The innermost scope of the first token with exactly this text (optionally on a line). */
function scopeOf(toks: Tok[], text: string, line?: number): string {
  const t = toks.find((t) => t.text === text && (line === undefined || t.line === line));
  if (!t) throw new Error(`no token ${JSON.stringify(text)}${line ? ` on line ${line}` : ""}`);
  return t.scopes[t.scopes.length - 1];
}

function assertScope(toks: Tok[], text: string, expected: string, line?: number) {
  const got = scopeOf(toks, text, line);
  if (!got.startsWith(expected)) {
    throw new Error(`${JSON.stringify(text)}: expected scope ${expected}*, got ${got}`);
  }
}

const fixture = await Deno.readTextFile(new URL("fixtures/highlight.vmdesc", import.meta.url));

Deno.test("textmate: comments and strings", async () => {
  const toks = await tokenize(fixture);
  assertScope(toks, " a line comment", "comment.line.double-slash.vmdesc", 1);
  assertScope(toks, "/*", "punctuation.definition.comment.begin.vmdesc", 2);
  assertScope(toks, "   comment ", "comment.block.vmdesc", 3);
  assertScope(toks, "common.vmdesc", "string.quoted.double.vmdesc", 4);
  assertScope(toks, "guests/build/scan.elf", "string.quoted.double.vmdesc");
  assertScope(toks, '\\"', "constant.character.escape.vmdesc");
  // `//` inside a string is not a comment, and a keyword inside a comment is not a keyword.
  const inString = await tokenize('boot pvh "a//b"');
  assertScope(inString, "a//b", "string.quoted.double.vmdesc");
  const inComment = await tokenize("// machine memory 4 GiB");
  assertScope(inComment, " machine memory 4 GiB", "comment.line.double-slash.vmdesc");
});

Deno.test("textmate: keywords, names and constants", async () => {
  const toks = await tokenize(fixture);
  assertScope(toks, "import", "keyword.control.import.vmdesc");
  assertScope(toks, "let", "storage.type.let.vmdesc");
  assertScope(toks, "ecam_base", "variable.other.constant.definition.vmdesc", 6);
  assertScope(toks, "machine", "storage.type.machine.vmdesc");
  assertScope(toks, "scan", "entity.name.type.machine.vmdesc", 11);
  assertScope(toks, "extends", "storage.modifier.extends.vmdesc");
  assertScope(toks, "scan", "entity.other.inherited-class.vmdesc", 29);
  for (const kw of ["cpus", "memory", "pci_hole", "strategy", "ecam", "buses", "boot", "cmdline"]) {
    assertScope(toks, kw, "keyword.other.setting.vmdesc");
  }
  assertScope(toks, "shadow", "constant.language.strategy.vmdesc");
  assertScope(toks, "pvh", "constant.language.boot-protocol.vmdesc");
  assertScope(toks, "mem32", "constant.language");
  assertScope(toks, "prefetchable", "constant.language.vmdesc");
  assertScope(toks, "device", "keyword.other.device.vmdesc", 18);
  assertScope(toks, "serial", "support.type.device-kind.vmdesc");
  assertScope(toks, "com1", "entity.name.tag.device.vmdesc");
  assertScope(toks, "debug_exit", "support.type.device-kind.vmdesc");
  assertScope(toks, "virtio_rng", "support.type.pci-kind.vmdesc");
  assertScope(toks, "generic", "support.type.pci-kind.vmdesc");
  // `device 0x1005` inside a generic PCI block is the PCI device id property.
  assertScope(toks, "device", "keyword.other.setting.vmdesc", 22);
  assertScope(toks, "port", "variable.other.property.vmdesc");
  assertScope(toks, "acpi", "keyword.other.setting.vmdesc");
  assertScope(toks, "off", "constant.language.vmdesc");
  assertScope(toks, "cpuid", "keyword.other.setting.vmdesc");
  assertScope(toks, "hide", "keyword.other.setting.vmdesc");
  assertScope(toks, "cx16", "variable.other.vmdesc");
  assertScope(toks, "irq", "variable.other.property.vmdesc");
  assertScope(toks, "ecam_base", "variable.other.vmdesc", 16);
  // Identifiers that merely contain a keyword stay identifiers.
  const ids = await tokenize("let memory_top = machines");
  assertScope(ids, "memory_top", "variable.other.constant.definition.vmdesc");
  assertScope(ids, "machines", "variable.other.vmdesc");
});

Deno.test("textmate: numbers, units, hex, binary and PCI addresses", async () => {
  const toks = await tokenize(fixture);
  assertScope(toks, "0xE000_0000", "constant.numeric.hex.vmdesc");
  assertScope(toks, "0x3f8", "constant.numeric.hex.vmdesc");
  assertScope(toks, "0b1010_0101", "constant.numeric.binary.vmdesc");
  assertScope(toks, "3", "constant.numeric.decimal.vmdesc", 7);
  assertScope(toks, "GiB", "keyword.other.unit.vmdesc", 7);
  assertScope(toks, "128", "constant.numeric.decimal.vmdesc", 13);
  assertScope(toks, "MiB", "keyword.other.unit.vmdesc", 13);
  assertScope(toks, "KiB", "keyword.other.unit.vmdesc", 23);
  assertScope(toks, "..", "keyword.operator.range.vmdesc", 14);
  assertScope(toks, "255", "constant.numeric.decimal.vmdesc", 16);
  assertScope(toks, ">>", "keyword.operator.bitwise.shift.vmdesc");
  assertScope(toks, "00:02.0", "constant.numeric.pci-address.vmdesc");
  assertScope(toks, "00:03.0", "constant.numeric.pci-address.vmdesc");
  // A hex number with a unit right after it, and a segment-qualified BDF.
  const more = await tokenize("ram 0x1000_0000 B + 0x10 MiB\npci 0000:00:1f.7 virtio_blk");
  assertScope(more, "0x1000_0000", "constant.numeric.hex.vmdesc");
  assertScope(more, "B", "keyword.other.unit.vmdesc");
  assertScope(more, "MiB", "keyword.other.unit.vmdesc");
  assertScope(more, "0000:00:1f.7", "constant.numeric.pci-address.vmdesc");
  // A hex literal ending in B is one number, not a number and a unit.
  const hexB = await tokenize("port 0x1B");
  assertScope(hexB, "0x1B", "constant.numeric.hex.vmdesc");
});

Deno.test("textmate: every example file tokenizes without illegal scopes", async () => {
  const dir = new URL("examples/", root);
  const files: string[] = [fromFileUrl(new URL("fixtures/highlight.vmdesc", import.meta.url))];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".vmdesc")) files.push(fromFileUrl(new URL(e.name, dir)));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const f of files) {
    const toks = await tokenize(await Deno.readTextFile(f));
    const bad = toks.find((t) => t.scopes.some((s) => s.startsWith("invalid.")));
    if (bad) throw new Error(`${f}:${bad.line}: illegal token ${JSON.stringify(bad.text)}`);
    // Every non-blank token is classified beyond the root scope, except plain punctuation.
    const loose = toks.find((t) =>
      t.text.trim() !== "" && t.scopes.length === 1 &&
      !/^[\s,;:]+$/.test(t.text)
    );
    if (loose) throw new Error(`${f}:${loose.line}: unclassified ${JSON.stringify(loose.text)}`);
  }
});
