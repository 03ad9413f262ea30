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
