/**
 * Completion from the text before the cursor. While typing, the file is usually not
 * valid, so the context comes from a small token scan (comments and strings skipped)
 * rather than the tree: the enclosing block (top level, machine, pci_hole, device of
 * some kind, pci function of some kind, boot, cpuid) and the few tokens before the
 * cursor. The candidates come from lang's own tables (lang/specs.ts), so completion
 * offers exactly what the checker accepts.
 */
import {
  type CompletionItem,
  CompletionItemKind,
  type CompletionList,
  type CompletionParams,
  MarkupKind,
} from "vscode-languageserver";
import {
  BAR_KINDS,
  BOOT_PROTOCOLS,
  DEVICE_KINDS,
  HOLE_PROPS,
  HOLE_STRUCTURED,
  MACHINE_PROPS,
  PCI_KINDS,
  type PropTable,
  REPEATABLE_STRUCTURED,
  STRUCTURED_SETTINGS,
} from "../lang/specs.ts";
import { hex } from "../lang/program.ts";
import type { Workspace } from "./mod.ts";
import { type Place, placeTable } from "./keywords.ts";

export const TRIGGER_CHARACTERS = [" "];

/** Where the cursor is: a place of keywords.ts (whose settings table applies), or elsewhere. */
type Block = Place | { block: "other" };

interface Tok {
  text: string;
  start: number;
  line: number;
}

export interface Context {
  block: Block;
  /** Tokens of the current block level before the word being typed, last first. */
  prev: Tok[];
  /** The word being typed (possibly empty) and where it starts. */
  word: string;
  wordStart: number;
  /** Whether the word is the first token on its line. */
  lineStart: boolean;
  /** Inside a comment or string: no completion. */
  quiet: boolean;
  /**
   * The tokens of the current block itself (not of blocks nested in it), before and after
   * the cursor, without the word being typed: what is already written in this body.
   */
  siblings: string[];
}

const HEADERS = new Set(["machine", "pci_hole", "device", "pci", "boot", "cpuid"]);

/** Scans `text` up to `offset` into the completion context. Exported for unit tests. */
export function contextAt(text: string, offset: number): Context {
  const toks: Tok[] = [];
  // Token index where each open block's content starts, and the block it is.
  const stack: { block: Block; from: number }[] = [{ block: { block: "top" }, from: 0 }];
  let line = 0;
  let i = 0;
  let quiet = false;
  while (i < offset) {
    const c = text[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (c === "/" && text[i + 1] === "/") {
      const e = text.indexOf("\n", i);
      if (e < 0 || e >= offset) {
        quiet = true;
        break;
      }
      i = e;
    } else if (c === "/" && text[i + 1] === "*") {
      const e = text.indexOf("*/", i + 2);
      if (e < 0 || e + 2 > offset) {
        quiet = true;
        break;
      }
      for (let k = i; k < e; k++) if (text[k] === "\n") line++;
      i = e + 2;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"' && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      if (j >= offset) {
        quiet = true;
        break;
      }
      toks.push({ text: text.slice(i, j + 1), start: i, line });
      i = j + 1;
    } else if (c === "{") {
      const from = stack[stack.length - 1].from;
      stack.push({
        block: headerBlock(toks.slice(from), stack[stack.length - 1].block),
        from: toks.length + 1,
      });
      toks.push({ text: "{", start: i, line });
      i++;
    } else if (c === "}") {
      if (stack.length > 1) stack.pop();
      toks.push({ text: "}", start: i, line });
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else {
      const m =
        /^(?:[0-9A-Fa-f]{4}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]|^[A-Za-z0-9_]+|^\.\.|^<<|^>>|^./
          .exec(text.slice(i, Math.min(offset, i + 64)));
      const t = m ? m[0] : c;
      toks.push({ text: t, start: i, line });
      i += t.length;
    }
  }
  const top = stack[stack.length - 1];
  let level = toks.slice(top.from);
  let word = "";
  let wordStart = offset;
  const last = level[level.length - 1];
  if (
    last && last.start + last.text.length === offset && /^[A-Za-z_][A-Za-z0-9_]*$/.test(last.text)
  ) {
    word = last.text;
    wordStart = last.start;
    level = level.slice(0, -1);
  }
  const before = level[level.length - 1];
  const lineStart = !before || before.line !== line;
  const siblings = quiet ? [] : [...topLevelOf(level), ...tokensAfter(text, offset)];
  return { block: top.block, prev: level.reverse(), word, wordStart, lineStart, quiet, siblings };
}

/** The tokens of `level` outside the blocks nested in it. */
function topLevelOf(level: Tok[]): string[] {
  const out: string[] = [];
  let depth = 0;
  for (const t of level) {
    if (t.text === "{") depth++;
    else if (t.text === "}") depth = Math.max(0, depth - 1);
    else if (depth === 0) out.push(t.text);
  }
  return out;
}

/**
 * The tokens after `offset` up to the end of the block the cursor is in, outside the
 * blocks nested in it (comments and strings skipped, a word the cursor is in skipped).
 */
function tokensAfter(text: string, offset: number): string[] {
  const out: string[] = [];
  let i = offset;
  while (i < text.length && /[A-Za-z0-9_]/.test(text[i])) i++; // the rest of the typed word
  let depth = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "/" && text[i + 1] === "/") {
      const e = text.indexOf("\n", i);
      i = e < 0 ? text.length : e;
    } else if (c === "/" && text[i + 1] === "*") {
      const e = text.indexOf("*/", i + 2);
      i = e < 0 ? text.length : e + 2;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"' && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      if (depth === 0) out.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (c === "{") {
      depth++;
      i++;
    } else if (c === "}") {
      if (depth === 0) break; // the end of the cursor's block
      depth--;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else {
      const m = /^[A-Za-z0-9_]+|^\.\.|^<<|^>>|^./.exec(text.slice(i, i + 64));
      const t = m ? m[0] : c;
      if (depth === 0) out.push(t);
      i += t.length;
    }
  }
  return out;
}

/** The block a `{` opens, from the tokens of the enclosing level before it. */
function headerBlock(level: Tok[], outer: Block): Block {
  for (let k = level.length - 1; k >= 0; k--) {
    const t = level[k].text;
    if (t === "{" || t === "}") break;
    if (!HEADERS.has(t)) continue;
    // `device 0x1005` inside a generic PCI body is a property, not a header.
    if (t === "device" && outer.block !== "machine" && outer.block !== "top") continue;
    const next = level[k + 1]?.text ?? "";
    switch (t) {
      case "machine":
        return { block: "machine" };
      case "pci_hole":
        return { block: "hole" };
      case "device":
        return { block: "device", kind: next };
      case "pci":
        return { block: "pci", kind: level[k + 2]?.text ?? "" };
      case "boot":
        return { block: "boot", protocol: next };
      case "cpuid":
        return { block: "cpuid" };
    }
  }
  return { block: "other" };
}

function blockProps(b: Block): PropTable {
  return b.block === "other" ? {} : placeTable(b);
}

const OPERATORS = new Set(["=", "+", "-", "*", "/", "<<", ">>", "(", ".."]);
const isBdf = (t: string) => /^(?:[0-9A-Fa-f]{4}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$/.test(t);

export interface Candidates {
  items: CompletionItem[];
}

export function completion(ws: Workspace, p: CompletionParams): CompletionList | null {
  const d = ws.get(p.textDocument.uri);
  if (!d) return null;
  const text = d.doc.getText();
  const offset = d.doc.offsetAt(p.position);
  const lineText = text.slice(text.lastIndexOf("\n", offset - 1) + 1, offset);
  const imp = /^\s*import\s+"([^"]*)$/.exec(lineText);
  if (imp) return { isIncomplete: false, items: importPaths(d.path, imp[1]) };
  const ctx = contextAt(text, offset);
  if (ctx.quiet) return { isIncomplete: false, items: [] };
  const a = ws.analysis(p.textDocument.uri);
  const lets = a?.program ? [...a.program.lets.values()] : [];
  const machines = a?.program ? [...a.program.machines.keys()] : [];
  const items = candidates(ctx, {
    lets: lets.map((l) => ({
      name: l.name,
      value: l.value === null || typeof l.value === "bigint" ? l.value : l.value.text,
    })),
    machines,
  });
  return { isIncomplete: false, items };
}

/** `.vmdesc` files and folders next to the document, for `import "…`. */
function importPaths(docPath: string, typed: string): CompletionItem[] {
  const slash = typed.lastIndexOf("/");
  const sub = slash >= 0 ? typed.slice(0, slash + 1) : "";
  const dir = docPath.slice(0, docPath.lastIndexOf("/") + 1) + sub;
  const items: CompletionItem[] = [];
  try {
    for (const e of Deno.readDirSync(dir || ".")) {
      if (e.name.startsWith(".")) continue;
      const full = dir + e.name;
      if (full === docPath) continue;
      if (e.isDirectory) {
        items.push({
          label: e.name + "/",
          kind: CompletionItemKind.Folder,
          insertText: e.name + "/",
        });
      } else if (e.isFile && e.name.endsWith(".vmdesc")) {
        items.push({ label: e.name, kind: CompletionItemKind.File });
      }
    }
  } catch {
    // A folder that does not exist (yet): nothing to offer.
  }
  return items.sort((a, b) => a.label.localeCompare(b.label));
}

export interface Names {
  /** The constants in scope: a number, a string's text, or null where the `let` is broken. */
  lets: { name: string; value: bigint | string | null }[];
  machines: string[];
}

const kw = (label: string, detail?: string): CompletionItem => ({
  label,
  kind: CompletionItemKind.Keyword,
  ...(detail ? { detail } : {}),
});

const enumItems = (values: readonly string[], detail: string): CompletionItem[] =>
  values.map((v) => ({ label: v, kind: CompletionItemKind.EnumMember, detail }));

/**
 * The constants that fit where a value of type `want` goes (null: any): a number where
 * the setting takes a number, a string where it takes a string, as the checker accepts
 * them. A constant whose `let` is broken has no type to go by and is offered everywhere.
 */
function letItems(names: Names, want: "number" | "string" | null): CompletionItem[] {
  const fits = (v: bigint | string | null) =>
    want === null || v === null || (want === "number") === (typeof v === "bigint");
  return names.lets.filter((l) => fits(l.value)).map((l) => ({
    label: l.name,
    kind: CompletionItemKind.Constant,
    ...(l.value === null ? {} : {
      detail: typeof l.value === "bigint"
        ? `= ${hex(l.value)} (${l.value})`
        : `= ${JSON.stringify(l.value)}`,
    }),
  }));
}

/**
 * What the statement the cursor is in takes: its first token (the first on its line at
 * this block level) names the setting; `let`, or a setting it cannot tell, takes either.
 */
function valueType(prev: Tok[], props: PropTable): "number" | "string" | null {
  let first: Tok | undefined;
  for (let k = 0; k < prev.length; k++) {
    const t = prev[k];
    const older = prev[k + 1];
    if (t.text === "{" || t.text === "}") break;
    first = t;
    if (!older || older.line !== t.line || older.text === "{" || older.text === "}") break;
  }
  const setting = first?.text;
  if (setting === "ecam" || setting === "bar") return "number";
  if (setting === undefined || !Object.hasOwn(props, setting)) return null;
  const t = props[setting].type.t;
  return t === "string" ? "string" : t === "int" || t === "range" ? "number" : null;
}

function propItems(table: PropTable): CompletionItem[] {
  return Object.entries(table).map(([name, spec]) => ({
    label: name,
    kind: CompletionItemKind.Property,
    detail: spec.required ? "required" : undefined,
    documentation: { kind: MarkupKind.Markdown, value: spec.doc },
  }));
}

/** What fits at the context (pure; exported for unit tests). */
export function candidates(ctx: Context, names: Names): CompletionItem[] {
  if (ctx.quiet) return [];
  const [p1, p2] = ctx.prev.map((t) => t.text);
  const b = ctx.block;
  // Right after a word that takes a specific kind of word.
  if (!ctx.lineStart || (p1 && !["{", "}"].includes(p1))) {
    if (p1 === "device" && (b.block === "machine" || b.block === "top")) {
      return Object.entries(DEVICE_KINDS).map(([k, s]) => ({
        label: k,
        kind: CompletionItemKind.Class,
        documentation: { kind: MarkupKind.Markdown, value: s.doc },
      }));
    }
    if (p1 && isBdf(p1) && p2 === "pci") {
      return Object.entries(PCI_KINDS).map(([k, s]) => ({
        label: k,
        kind: CompletionItemKind.Class,
        documentation: { kind: MarkupKind.Markdown, value: s.doc },
      }));
    }
    if (p1 === "strategy") return enumItems(["trap", "shadow"], "PCI hole strategy");
    if (p1 === "boot") return enumItems(BOOT_PROTOCOLS, "boot protocol");
    if (p1 === "mode") return enumItems(["protected", "real"], "CPU mode at entry");
    if (p1 === "buses") return [kw("auto", "only the buses in use")];
    if (p1 === "acpi") return enumItems(["on", "off"], "ACPI tables");
    if (p2 === "bar" && b.block === "pci") return enumItems(BAR_KINDS, "BAR kind");
    if (p1 === "extends") {
      return names.machines.map((m) => ({
        label: m,
        kind: CompletionItemKind.Class,
        detail: "machine",
      }));
    }
    if (p1 === "machine" || p1 === "let" || p1 === "import" || p1 === "pci" || p1 === "hide") {
      return [];
    }
    // A value position: after a property name, an operator, `ecam`, or `let x =`.
    const props = blockProps(b);
    const valueAfter = p1 !== undefined &&
      (OPERATORS.has(p1) || Object.hasOwn(props, p1) || p1 === "ecam" ||
        (p1 === "bar" && b.block === "pci"));
    if (valueAfter) {
      const spec = p1 ? props[p1] : undefined;
      if (spec?.type.t === "enum") return enumItems(spec.type.values, p1);
      if (spec?.type.t === "onoff") return enumItems(["on", "off"], p1);
      return letItems(names, valueType(ctx.prev, props));
    }
    if (!ctx.lineStart) {
      // After a complete value on the same line: a new setting may follow.
      const prevIsValue = p1 !== undefined && !HEADERS.has(p1);
      if (!prevIsValue) return [];
    }
  }
  // The start of a statement: what the enclosing block accepts, less what this body
  // already gives and may not give again.
  return statementItems(b, ctx.siblings);
}

/** Settings that may begin a statement in block `b`, each with whether it may repeat. */
export function acceptedSettings(
  b: Block,
): { name: string; repeat: boolean; item: CompletionItem }[] {
  const props = (table: PropTable) =>
    propItems(table).map((item) => ({
      name: item.label,
      repeat: table[item.label].repeat === true,
      item,
    }));
  switch (b.block) {
    case "top":
      return ["import", "let", "machine"].map((k) => ({ name: k, repeat: true, item: kw(k) }));
    case "machine":
      return [
        ...props(MACHINE_PROPS),
        ...STRUCTURED_SETTINGS.map((s) => ({
          name: s,
          repeat: REPEATABLE_STRUCTURED.includes(s),
          item: kw(s),
        })),
      ];
    case "hole":
      return [
        ...props(HOLE_PROPS),
        ...HOLE_STRUCTURED.map((s) => ({
          name: s,
          repeat: false,
          item: kw(s, "ECAM window: ecam BASE buses A..B"),
        })),
      ];
    case "device":
    case "boot":
      return props(blockProps(b));
    case "pci":
      return [
        ...props(blockProps(b)),
        ...(PCI_KINDS[b.kind]?.bars !== false
          ? [{ name: "bar", repeat: true, item: kw("bar", "bar INDEX mem32|mem64|io SIZE") }]
          : []),
      ];
    case "cpuid":
      return [{ name: "hide", repeat: true, item: kw("hide", "hide CPU features from the guest") }];
    default:
      return [];
  }
}

function statementItems(b: Block, siblings: string[]): CompletionItem[] {
  const accepted = acceptedSettings(b);
  const given = givenSettings(siblings, new Set(accepted.map((a) => a.name)));
  return accepted.filter((a) => a.repeat || !given.has(a.name)).map((a) => a.item);
}

/**
 * Which of `names` a body's tokens already give: a name counts where a setting can start
 * (first, or after a value), not where a value is expected (`irq irq` names the constant
 * `irq` as the value of `irq`).
 */
export function givenSettings(tokens: string[], names: Set<string>): Set<string> {
  const given = new Set<string>();
  let expectValue = false;
  for (const t of tokens) {
    if (!expectValue && names.has(t)) {
      given.add(t);
      expectValue = true;
    } else if (OPERATORS.has(t) || t === ":" || t === ".") {
      expectValue = true; // the value goes on after an operator (`2 * x`, `0 .. 4 GiB`)
    } else expectValue = false;
  }
  return given;
}
