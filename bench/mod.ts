/**
 * `deno task bench [NAME...] [-- ARGS...]`: runs every benchmark folder `bench/<name>/mod.ts`
 * (or only the named ones), each in its own Deno process so a KVM benchmark's FFI state
 * or a crash cannot disturb the next one. ARGS after `--` go to every benchmark
 * (e.g. `deno task bench lang -- --runs 9`). Each benchmark prints its own numbers and
 * writes `bench/results/<name>.json`; this prints a one-line status per benchmark.
 */

const here = new URL(".", import.meta.url);

/** Benchmark names: folders of bench/ with a mod.ts, sorted. */
export async function discover(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(here)) {
    if (!e.isDirectory || e.name === "results" || e.name.startsWith(".")) continue;
    try {
      if ((await Deno.stat(new URL(`${e.name}/mod.ts`, here))).isFile) names.push(e.name);
    } catch { /* a folder without mod.ts (helpers, C sources) */ }
  }
  return names.sort();
}

// All permissions: the KVM benchmarks open /dev/kvm and read /proc/<pid>/task and
// /proc/self/fd, which Deno grants only with --allow-all (special files under /dev, /proc).
const PERMISSIONS = ["--allow-all"];

async function main(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const wanted = dash < 0 ? args : args.slice(0, dash);
  const passed = dash < 0 ? [] : args.slice(dash + 1);
  if (wanted.includes("-h") || wanted.includes("--help")) {
    console.log(
      "usage: deno task bench [NAME...] [-- ARGS...]\nbenchmarks: " + (await discover()).join(", "),
    );
    return 0;
  }
  const all = await discover();
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length) {
    console.error(`error: unknown benchmark ${unknown.join(", ")}; known: ${all.join(", ")}`);
    return 2;
  }
  const names = wanted.length ? wanted : all;
  const results: { name: string; code: number; seconds: number }[] = [];
  for (const name of names) {
    console.log(`\n=== bench/${name} ===`);
    const t0 = performance.now();
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMISSIONS, new URL(`${name}/mod.ts`, here).pathname, ...passed],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    results.push({ name, code, seconds: (performance.now() - t0) / 1000 });
  }
  console.log("\n=== summary ===");
  for (const r of results) {
    console.log(
      `${r.code === 0 ? "ok    " : "FAILED"}  ${r.name.padEnd(10)} ${r.seconds.toFixed(1)} s`,
    );
  }
  return results.some((r) => r.code !== 0) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
