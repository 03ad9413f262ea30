/**
 * `vmdesc explain CODE`: prints the `## CODE: title` section of docs/diagnostics.md
 * (meaning, example, fix). Without a code it lists every code with its title.
 */
import { suggest } from "./args.ts";
import { failure, out, startTextOrJson, usageError } from "./output.ts";
import { CODES, isKnownCode } from "../plan/codes.ts";
import { DOC_URL, type Explanation, readExplanations } from "../host/explanations.ts";

export const HELP = `Explain a diagnostic code: what it means, an example, and how to fix it.

Usage: vmdesc explain CODE     e.g. vmdesc explain E0201
       vmdesc explain          list every code with its title

Options:
  --format text|json   text (default, the Markdown section), or JSON:
                       {"version": 1, "code", "severity", "title", "text"};
                       without CODE {"version": 1, "codes": [{code, severity,
                       title}, ...]}
  -h, --help           show this help

Codes: E00xx syntax, E01xx names and imports, E02xx layout, E03xx devices,
E04xx machine requirements, E05xx boot payload, E1xxx runtime, W0xxx warnings.
The same text is in docs/diagnostics.md.
Exit status: 0 ok, 2 unknown code or usage error.
`;

/** "e201", "0201", "E0201" → "E0201"; anything else unchanged. */
export function normalizeCode(raw: string): string {
  const s = raw.trim().toUpperCase();
  if (/^\d{1,4}$/.test(s)) return "E" + s.padStart(4, "0");
  const m = /^([EW])(\d{1,4})$/.exec(s);
  return m ? m[1] + m[2].padStart(4, "0") : s;
}

export async function run(args: string[]): Promise<number> {
  const start = startTextOrJson("explain", args, HELP);
  if (typeof start === "number") return start;
  const { parsed, json } = start;
  if (parsed.positionals.length > 1) {
    return usageError(
      { message: "explain takes one code", hint: "vmdesc explain E0201" },
      "explain",
    );
  }
  if (parsed.positionals.length === 0) {
    if (json) {
      const codes = Object.entries(CODES).map(([code, info]) => ({
        code,
        severity: info.severity,
        title: info.title,
      }));
      out(JSON.stringify({ version: 1, codes }, null, 2) + "\n");
      return 0;
    }
    out(
      Object.entries(CODES).map(([code, info]) =>
        `${code}  ${info.severity.padEnd(7)}  ${info.title}\n`
      )
        .join(""),
    );
    return 0;
  }
  const raw = parsed.positionals[0];
  const code = normalizeCode(raw);
  if (!isKnownCode(code)) {
    const best = suggest(code, Object.keys(CODES));
    return usageError(
      {
        message: `unknown diagnostic code '${raw}'`,
        hint: best
          ? `did you mean ${best} (${CODES[best as keyof typeof CODES].title})?`
          : "run 'vmdesc explain' to list every code",
      },
      "explain",
    );
  }
  let explanations: Map<string, Explanation>;
  try {
    explanations = await readExplanations();
  } catch {
    failure(
      "E2002",
      `cannot read ${DOC_URL.pathname}`,
      "the docs/ folder ships with vmdesc; reinstall it",
    );
    return 1;
  }
  const section = explanations.get(code);
  if (!section) {
    failure(
      "E2002",
      `${code} (${CODES[code].title}) has no explanation in docs/diagnostics.md yet`,
    );
    return 1;
  }
  if (json) {
    const info = CODES[code];
    const doc = {
      version: 1,
      code,
      severity: info.severity,
      title: info.title,
      text: section.text,
    };
    out(JSON.stringify(doc, null, 2) + "\n");
  } else out(section.text);
  return 0;
}
