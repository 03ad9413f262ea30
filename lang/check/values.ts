/**
 * Typed setting values: a setting's expression evaluated as the type its property table
 * (lang/specs.ts) asks for — a number within bounds, a range, a string, on/off, one of a
 * set of words — with E0005 (wrong type), E0211 (empty range), E0302 (unknown property),
 * E0303 (missing property) and E0304 (out of range, unknown word); and the 4 KiB alignment
 * rule (E0207) shared by RAM and the PCI hole.
 */
import type * as A from "../ast.ts";
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error } from "../diagnostics/make.ts";
import { type EvalContext, evalExpr, evalText, hex, nameSuggestion } from "../program.ts";
import { PAGE, type PropSpec, type PropTable } from "../specs.ts";
import { suggest } from "../suggest.ts";

/** A property's evaluated value (an int as bigint, a string, a boolean, an enum word). */
export interface TypedValue {
  value: bigint | string | boolean;
  /** The value's span in the source. */
  span: Span;
  /**
   * For a string: the file whose text wrote it. A relative path is relative to that file's
   * directory, wherever the setting ends up (a base machine's option merged into a child).
   */
  origin?: string;
}

/** Evaluated properties by name. */
export type PropValues = Map<string, TypedValue>;

function typeName(v: A.Value): string {
  switch (v.kind) {
    case "String":
      return "a string";
    case "Bool":
      return "a boolean";
    case "Range":
      return v.form === "to" ? "a range" : "a sum";
    default:
      return "a number";
  }
}

export function evalInt(v: A.Value, ctx: EvalContext, what: string): bigint | null {
  if (v.kind === "Range" && v.form === "plus") {
    // `a + b` in a number position is plain addition, with the arithmetic's own checks.
    const sum: A.Binary = {
      kind: "Binary",
      op: "+",
      left: v.left,
      right: v.right,
      opSpan: v.span,
      span: v.span,
    };
    return evalExpr(sum, ctx, what);
  }
  if (v.kind === "String" || v.kind === "Bool" || v.kind === "Range") {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be a number, found ${typeName(v)}`,
        v.span,
        v.kind === "Range"
          ? "a range names a span of addresses; give its size or base as a number"
          : "write a number, e.g. 0x3f8, 4 or 128 MiB",
      ),
    );
    return null;
  }
  return evalExpr(v, ctx, what);
}

export function evalRange(
  v: A.Value,
  ctx: EvalContext,
  what: string,
): { base: bigint; size: bigint } | null {
  if (v.kind !== "Range") {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be a range, found ${typeName(v)}`,
        v.span,
        "write `base .. end` (end exclusive) or `base + size`",
      ),
    );
    return null;
  }
  const l = evalExpr(v.left, ctx);
  const r = evalExpr(v.right, ctx);
  if (l === null || r === null) return null;
  if (v.form === "to") {
    if (r <= l) {
      ctx.diagnostics.push(
        error(
          "E0211",
          `the range ${hex(l)} .. ${hex(r)} is ${r === l ? "empty" : "inverted"}`,
          v.span,
          "the end is exclusive and must be above the start",
        ),
      );
      return null;
    }
    return { base: l, size: r - l };
  }
  if (r === 0n) {
    ctx.diagnostics.push(
      error("E0211", `the range ${hex(l)} + 0 is empty`, v.span, "give it a size above 0"),
    );
    return null;
  }
  return { base: l, size: r };
}

/**
 * A string setting: a string, a string constant, or strings joined with `+` (which reads
 * as a `+` range in a value position, as `a + b` adds where a number is expected).
 */
function evalString(
  v: A.Value,
  ctx: EvalContext,
  what: string,
): { value: string; origin: string } | null {
  if (v.kind === "Bool" || (v.kind === "Range" && v.form === "to")) {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be a string in double quotes, found ${typeName(v)}`,
        v.span,
        "put the text in double quotes",
      ),
    );
    return null;
  }
  if (
    v.kind === "Name" && ctx.lookup(v.name) === undefined &&
    !nameSuggestion(v.name, ctx.names(), ctx.suggestions)
  ) {
    // A bare word where text goes (`output stdout`): the quotes are missing, most likely.
    const quoted = JSON.stringify(v.name);
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be a string in double quotes, found the word \`${v.name}\``,
        v.span,
        `put it in double quotes: ${quoted} (or define a string constant \`${v.name}\`)`,
        [],
        [{ title: `write ${quoted}`, span: v.span, replacement: quoted }],
      ),
    );
    return null;
  }
  const e: A.Expr = v.kind === "Range"
    ? { kind: "Binary", op: "+", left: v.left, right: v.right, opSpan: v.span, span: v.span }
    : v;
  const t = evalText(e, ctx, what);
  return t && { value: t.text, origin: t.origin };
}

function evalOnOff(v: A.Value, ctx: EvalContext, what: string): boolean | null {
  if (v.kind === "Bool") return v.value;
  if (v.kind === "Name") {
    if (v.name === "on") return true;
    if (v.name === "off") return false;
    const s = suggest(v.name, ["on", "off"]);
    ctx.diagnostics.push(
      error(
        "E0304",
        `${what} is \`on\` or \`off\`, not \`${v.name}\``,
        v.span,
        s ? `did you mean \`${s}\`?` : "write `on` or `off`",
        [],
        s ? [{ title: `change to \`${s}\``, span: v.span, replacement: s }] : undefined,
      ),
    );
    return null;
  }
  ctx.diagnostics.push(
    error(
      "E0005",
      `${what} must be \`on\` or \`off\`, found ${typeName(v)}`,
      v.span,
      "write `on` or `off`",
    ),
  );
  return null;
}

export function evalEnum<T extends string>(
  v: A.Value,
  values: readonly T[],
  ctx: EvalContext,
  what: string,
): T | null {
  const word = v.kind === "Name" ? v.name : v.kind === "String" ? v.value : null;
  if (word === null) {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be one of ${values.join(", ")}; found ${typeName(v)}`,
        v.span,
        `write one of the words ${values.join(", ")}`,
      ),
    );
    return null;
  }
  if ((values as readonly string[]).includes(word)) return word as T;
  const s = suggest(word, values);
  ctx.diagnostics.push(
    error(
      "E0304",
      `\`${word}\` is not a valid ${what}`,
      v.span,
      s
        ? `did you mean \`${s}\`? (one of ${values.join(", ")})`
        : `use one of ${values.join(", ")}`,
      [],
      s ? [{ title: `change to \`${s}\``, span: v.span, replacement: s }] : undefined,
    ),
  );
  return null;
}

/** Checks an int against a spec's bounds (E0304). */
function inBounds(
  v: bigint | null,
  spec: PropSpec,
  span: Span,
  what: string,
  diags: Diags,
): bigint | null {
  if (v === null || spec.type.t !== "int") return v;
  const { min, max } = spec.type;
  if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
    // Small ranges (IRQ lines, bus numbers, byte values) read best in decimal; ports and
    // addresses in hex.
    const show = (x: bigint) => (max !== undefined && max <= 255n ? x.toString() : hex(x));
    diags.push(
      error(
        "E0304",
        `${what} ${show(v)} is out of range`,
        span,
        `it must be between ${show(min ?? 0n)} and ${show(max ?? 0n)}`,
      ),
    );
    return null;
  }
  return v;
}

export function unknownProp(
  p: A.Prop,
  table: PropTable,
  extra: string[],
  where: string,
  diags: Diags,
) {
  const names = [...Object.keys(table), ...extra];
  const s = suggest(p.name.name, names);
  diags.push(
    error(
      "E0302",
      `\`${p.name.name}\` is not a property of ${where}`,
      p.name.span,
      s ? `did you mean \`${s}\`?` : `known here: ${names.join(", ")}`,
      [],
      s ? [{ title: `change to \`${s}\``, span: p.name.span, replacement: s }] : undefined,
    ),
  );
}

/**
 * Validates a property map against a table; returns the evaluated values (ints as bigint,
 * strings, booleans, enum words). Reports E0302 unknown, E0303 missing, type errors.
 */
export function evalProps(
  props: Map<string, A.Prop>,
  table: PropTable,
  ctx: EvalContext,
  where: string,
  anchor: Span,
  extraNames: string[] = [],
): PropValues {
  const out: PropValues = new Map();
  for (const [name, p] of props) {
    const spec = table[name];
    if (!spec) {
      unknownProp(p, table, extraNames, where, ctx.diagnostics);
      continue;
    }
    const what = `\`${name}\``;
    let v: bigint | string | boolean | null = null;
    let origin: string | undefined;
    switch (spec.type.t) {
      case "int":
        v = inBounds(evalInt(p.value, ctx, what), spec, p.value.span, what, ctx.diagnostics);
        break;
      case "string": {
        const s = evalString(p.value, ctx, what);
        if (s) [v, origin] = [s.value, s.origin];
        break;
      }
      case "onoff":
        v = evalOnOff(p.value, ctx, what);
        break;
      case "enum":
        v = evalEnum(p.value, spec.type.values, ctx, `value of ${what}`);
        break;
      case "range":
        break; // handled by the caller
    }
    if (v !== null) {
      const tv: TypedValue = { value: v, span: p.value.span };
      if (origin) tv.origin = origin;
      out.set(name, tv);
    }
  }
  // A missing property that a misspelt one stands for is reported once, as the misspelling
  // (E0302, did you mean `port`?), not again as missing.
  let meant: Set<string> | null = null;
  const misspelt = (name: string) => {
    if (!meant) {
      const names = [...Object.keys(table), ...extraNames];
      meant = new Set();
      for (const p of props.keys()) if (!table[p]) meant.add(suggest(p, names) ?? "");
    }
    return meant.has(name);
  };
  for (const [name, spec] of Object.entries(table)) {
    if (spec.required && !props.has(name) && !misspelt(name)) {
      ctx.diagnostics.push(
        error("E0303", `${where} needs \`${name}\``, anchor, `add \`${name} ...\` (${spec.doc})`),
      );
    }
  }
  return out;
}

export function alignUp(v: bigint, a: bigint): bigint {
  return (v + a - 1n) / a * a;
}

/** E0207 for a value that must be page aligned, with a fix when it is a plain literal. */
export function checkPage(v: bigint, span: Span, what: string, diags: Diags, node?: A.Expr) {
  if (v % PAGE === 0n) return;
  const up = alignUp(v, PAGE);
  const fixes = node && node.kind === "Number"
    ? [{ title: `round up to ${hex(up)}`, span: node.span, replacement: hex(up) }]
    : undefined;
  diags.push(
    error(
      "E0207",
      `${what} ${hex(v)} is not a multiple of 4 KiB`,
      span,
      `KVM maps memory in 4 KiB pages; use ${hex(up)}`,
      [],
      fixes,
    ),
  );
}
