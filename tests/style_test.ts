/**
 * The tree stays linted and formatted: `deno lint` and `deno fmt --check` over the whole
 * repository (their excludes live in deno.json), so CI catches what a developer forgot.
 */
import { equal } from "node:assert/strict";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

async function deno(args: string[]): Promise<{ code: number; output: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: o.code, output: d.decode(o.stdout) + d.decode(o.stderr) };
}

Deno.test("style: deno lint finds nothing", async () => {
  const r = await deno(["lint"]);
  equal(r.code, 0, r.output);
});

Deno.test("style: deno fmt --check finds nothing to reformat", async () => {
  const r = await deno(["fmt", "--check"]);
  equal(r.code, 0, r.output);
});

/** Every *_test.ts of the tree (not node_modules, not the built guests). */
function testFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules") continue;
    const path = `${dir}${e.name}`;
    if (e.isDirectory) out.push(...testFiles(`${path}/`));
    else if (e.name.endsWith("_test.ts")) out.push(path);
  }
  return out;
}

Deno.test("style: a test skips only for a reason tests/skip.ts decides (and prints)", () => {
  const offenders: string[] = [];
  for (const path of testFiles()) {
    const text = Deno.readTextFileSync(path);
    const name = path.slice(ROOT.length);
    if (name === "tests/style_test.ts") continue;
    // An `ignore:` holds a decision of skip.ts (`skipReason(...)`, `kernelOrSkip(...)`),
    // kept in a variable named for it: skip, why, IGNORE, kvm.
    for (const m of text.matchAll(/\bignore:\s*([^,\n]+)/g)) {
      if (!/skip|why|IGNORE|kvm/.test(m[1])) offenders.push(`${name}: ignore: ${m[1]}`);
    }
    // Looking for a program by itself (instead of `tools` in skip.ts) is how a test comes
    // to skip quietly, or to return early, when the program is missing.
    for (const m of text.matchAll(/^(?:function|const) which\b.*$/gm)) {
      offenders.push(`${name}: its own which(): ${m[0]}`);
    }
  }
  equal(offenders.join("\n"), "");
});
