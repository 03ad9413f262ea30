/**
 * A small flag parser shared by the commands (no cliffy: JSR is not reachable, and
 * `node:util` parseArgs reports unknown flags without a "did you mean").
 *
 * Accepts `--name value`, `--name=value`, `-x value`, boolean `--name`, `--` to end flags,
 * and `-` as a positional (stdin). Unknown flags and missing values are usage errors,
 * which commands turn into exit status 2.
 */
import { suggest as suggestWord } from "../lang/suggest.ts";

export interface FlagSpec {
  type: "boolean" | "string";
  /** One-letter alias, without the dash. */
  short?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface Parsed {
  flags: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export class UsageError extends Error {
  constructor(message: string, readonly hint: string | null = null) {
    super(message);
    this.name = "UsageError";
  }
}

/** Every command accepts `--help` / `-h`; callers need not list it. */
const HELP_SPEC: FlagSpec = { type: "boolean", short: "h" };

export function parseArgs(args: string[], specs: FlagSpecs): Parsed {
  const all: FlagSpecs = { help: HELP_SPEC, ...specs };
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(all)) if (spec.short) byShort.set(spec.short, name);
  const flags: Parsed["flags"] = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-" || !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      const long = byShort.get(arg.slice(1, 2));
      if (!long || (arg.length > 2 && all[long].type === "boolean")) {
        throw unknownFlag(arg, all);
      }
      name = long;
      inline = arg.length > 2 ? arg.slice(2) : undefined;
    }
    const spec = all[name];
    if (!Object.hasOwn(all, name) || !spec) throw unknownFlag(arg, all);
    if (spec.type === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(`flag --${name} takes no value`, `write --${name} alone`);
      }
      flags[name] = true;
    } else {
      let value = inline;
      if (value === undefined) {
        if (i + 1 >= args.length) {
          throw new UsageError(`flag --${name} needs a value`, `write --${name} VALUE`);
        }
        value = args[++i];
      }
      flags[name] = value;
    }
  }
  return { flags, positionals };
}

function unknownFlag(arg: string, specs: FlagSpecs): UsageError {
  const name = arg.replace(/^-+/, "").replace(/=.*$/, "");
  const best = suggest(name, Object.keys(specs));
  return new UsageError(
    `unknown flag '${arg.replace(/=.*$/, "")}'`,
    best ? `did you mean '--${best}'?` : "see --help for the flags this command takes",
  );
}

/**
 * "Did you mean" for commands, flags and codes: lang's suggestion (`lang/suggest.ts`), but
 * case-insensitive, as a command line is typed (`CHECK`, `Chek`, `e0301`).
 */
export function suggest(word: string, candidates: Iterable<string>): string | null {
  const list = [...candidates];
  const lower = list.map((c) => c.toLowerCase());
  const w = word.toLowerCase();
  const same = lower.indexOf(w);
  if (same >= 0) return list[same];
  const hit = suggestWord(w, lower);
  return hit === null ? null : list[lower.indexOf(hit)];
}

/**
 * The value of `--format`: one of `names` (the first is the default), or an alias of one
 * (`human` for `text`). Anything else is a usage error naming the choices.
 */
export function formatFlag(
  value: string | boolean | undefined,
  names: readonly string[],
  aliases: Record<string, string> = {},
): string {
  if (value === undefined) return names[0];
  const v = String(value);
  if (names.includes(v)) return v;
  if (Object.hasOwn(aliases, v)) return aliases[v];
  const best = suggest(v, [...names, ...Object.keys(aliases)]);
  throw new UsageError(
    `unknown format '${v}'`,
    `use ${names.map((n) => `--format ${n}`).join(", ")}${
      best ? ` (did you mean '${best}'?)` : ""
    }`,
  );
}
