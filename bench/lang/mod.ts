/**
 * bench/lang: how checking scales with file size, how much faster the fast parser is than
 * Ohm, and how fast the CLI starts.
 *
 * Generates 1k- and 10k-line files (many machines, lets, devices, PCI functions), times
 * `compile` (parse + check + lower, i.e. `vmdesc check`) as the median of several runs,
 * and prints milliseconds and the 10k/1k ratio (linear growth means ≤ 11). It parses the
 * examples and both files with the fast parser and with Ohm side by side (bench/lang/
 * parsers.ts: interleaved, best and median, identical trees). It also times `format` and
 * the real CLI as subprocesses (`--version`, `check examples/hello.vmdesc`).
 * Writes bench/results/lang.json and lang.svg.
 *
 *   deno task bench lang [-- --runs 9]
 */
import { compile, createMemoryHost, format } from "../../lang/mod.ts";
import { vmdescArgv } from "../vmdesc_command.ts";
import { compareParsers, type ParserRow, parsersChart } from "./parsers.ts";
import { median } from "../stats.ts";

const root = new URL("../../", import.meta.url);

/** A valid machine of about 40 lines; `i` makes its names unique. */
function machineBlock(i: number): string {
  const bus = i % 4;
  return `// machine ${i}: a q35-like layout with a few devices
let base_${i} = 0xC000_0000
let ecam_${i} = 0xE000_0000
let ram_${i} = ${64 + (i % 8) * 32} MiB

machine m${i} {
  cpus ${1 + (i % 4)}
  memory ram_${i}

  pci_hole base_${i} .. 4 GiB {
    strategy ${i % 2 ? "trap" : "shadow"}
    ecam ecam_${i} buses 0..${bus + 1}
  }

  device serial com1 { port 0x3f8 irq 4 }
  device serial com2 { port 0x2f8 irq 3 }
  device debug_exit { port 0xf4 }
  device i8042 { port 0x60 }

  pci 00:02.0 virtio_rng
  pci 00:03.0 virtio_net
  pci 00:04.0 virtio_blk
  pci 0${bus}:05.0 generic {
    vendor 0x1af4
    device 0x10${(i % 100).toString().padStart(2, "0")}
    class 0x00ff00
    revision 1
    bar 0 mem32 4 KiB
    bar 2 mem64 1 MiB prefetchable
    bar 4 io 32
    irq 11
  }

  boot pvh "guest.elf" {
    cmdline "console=ttyS0 quiet"
  }
}

`;
}

/** A file of at least `lines` lines made of whole machine blocks. */
export function generate(lines: number): string {
  let text = "";
  let n = 0;
  for (let i = 0; n < lines; i++) {
    const block = machineBlock(i);
    text += block;
    n += block.split("\n").length - 1;
  }
  return text;
}

function timeIt(runs: number, fn: () => void): { median: number; min: number; max: number } {
  fn(); // warm-up: JIT and first-use costs are not what we compare
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return { median: median(times), min: Math.min(...times), max: Math.max(...times) };
}

async function cliMs(args: string[], runs: number): Promise<number> {
  const times: number[] = [];
  const [deno, ...argv] = vmdescArgv(Deno.execPath(), args);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const { code } = await new Deno.Command(deno, {
      args: argv,
      cwd: root.pathname,
      stdout: "null",
      stderr: "null",
    }).output();
    times.push(performance.now() - t0);
    if (code > 1) throw new Error(`vmdesc ${args.join(" ")} exited ${code}`);
  }
  return median(times);
}

export async function run(args: string[] = []): Promise<number> {
  const ri = args.indexOf("--runs");
  const runs = ri >= 0 ? Number(args[ri + 1]) : 11;
  const sizes = [1_000, 10_000];
  const rows: Record<string, unknown>[] = [];
  const checkMs: number[] = [];
  const errorMs: number[] = [];
  for (const lines of sizes) {
    const text = generate(lines);
    const actual = text.split("\n").length - 1;
    const host = createMemoryHost({ "bench.vmdesc": text }, ["guest.elf"]);
    const probe = compile(text, { file: "bench.vmdesc", host });
    const errors = probe.diagnostics.filter((d) => d.severity === "error");
    if (errors.length) {
      console.error(`generated file has errors, e.g. ${errors[0].code} ${errors[0].message}`);
      return 1;
    }
    const check = timeIt(runs, () => compile(text, { file: "bench.vmdesc", host }));
    // The same file with one syntax error in its middle machine: the error path must
    // scale too (an editor re-checks a broken file on every keystroke).
    const mid = text.indexOf("  memory ram_", text.length >> 1);
    const broken = text.slice(0, mid) + "  memory\n" + text.slice(text.indexOf("\n", mid) + 1);
    const brokenHost = createMemoryHost({ "bench.vmdesc": broken }, ["guest.elf"]);
    const withError = timeIt(
      runs,
      () => compile(broken, { file: "bench.vmdesc", host: brokenHost }),
    );
    const fmt = timeIt(runs, () => format(text, "bench.vmdesc"));
    checkMs.push(check.median);
    errorMs.push(withError.median);
    rows.push({
      lines: actual,
      machines: probe.plans.size,
      check_ms: round(check.median),
      check_min_ms: round(check.min),
      check_max_ms: round(check.max),
      format_ms: round(fmt.median),
      check_with_syntax_error_ms: round(withError.median),
      diagnostics: probe.diagnostics.length,
    });
    console.log(
      `check ${String(actual).padStart(6)} lines, ${probe.plans.size} machines: ` +
        `${check.median.toFixed(1)} ms (min ${check.min.toFixed(1)}, max ${
          check.max.toFixed(1)
        }); ` +
        `format ${fmt.median.toFixed(1)} ms; with a syntax error ${withError.median.toFixed(1)} ms`,
    );
  }
  const ratio = checkMs[1] / checkMs[0];
  const errorRatio = errorMs[1] / errorMs[0];
  console.log(
    `ratio 10k/1k: ${ratio.toFixed(2)} (linear ≤ 11; 10k lines in ${checkMs[1].toFixed(0)} ms)`,
  );
  console.log(`ratio 10k/1k with a syntax error: ${errorRatio.toFixed(2)}`);

  // The two parsers on the same valid texts. Ohm takes ~1.5 s for the 10k-line file, so
  // that one gets fewer rounds.
  const examplesDir = new URL("examples/", root);
  const examples = [...Deno.readDirSync(examplesDir)]
    .filter((e) => e.name.endsWith(".vmdesc"))
    .map((e) => e.name)
    .sort()
    .map((n) => Deno.readTextFileSync(new URL(n, examplesDir)));
  const parsers = [
    ...compareParsers([
      [`examples (${examples.length} files)`, examples],
      ["1k-line file", [generate(sizes[0])]],
    ], runs),
    ...compareParsers([["10k-line file", [generate(sizes[1])]]], Math.max(3, runs >> 1)),
  ];
  for (const p of parsers) {
    console.log(
      `parse ${p.text}: fast ${p.fast_median_ms.toFixed(2)} ms (best ${
        p.fast_best_ms.toFixed(2)
      }), ` +
        `Ohm ${p.ohm_median_ms.toFixed(1)} ms (best ${p.ohm_best_ms.toFixed(1)}): ` +
        `${p.speedup_median.toFixed(0)}× faster (best ${p.speedup_best.toFixed(0)}×); ` +
        `${p.fast_kib_per_s} vs ${p.ohm_kib_per_s} KiB/s`,
    );
  }

  const startupRuns = 5;
  const version = await cliMs(["--version"], startupRuns);
  const checkHello = await cliMs(["check", "examples/hello.vmdesc"], startupRuns).catch(() => NaN);
  console.log(
    `CLI start: --version ${version.toFixed(0)} ms, check examples/hello.vmdesc ${
      checkHello.toFixed(0)
    } ms (median of ${startupRuns})`,
  );

  const result = {
    benchmark: "lang",
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    runs,
    files: rows,
    ratio_10k_1k: round(ratio),
    ratio_10k_1k_with_syntax_error: round(errorRatio),
    linear: ratio <= 11,
    under_one_second: checkMs[1] < 1000,
    parsers,
    cli_startup_ms: { version: round(version), check_hello: round(checkHello) },
  };
  await Deno.mkdir(new URL("bench/results/", root), { recursive: true });
  const out = new URL("bench/results/lang.json", root);
  const tmp = new URL("bench/results/lang.json.tmp", root);
  await Deno.writeTextFile(tmp, JSON.stringify(result, null, 2) + "\n");
  await Deno.rename(tmp, out);
  const svgTmp = new URL("bench/results/lang.svg.tmp", root);
  await Deno.writeTextFile(svgTmp, chart(rows as unknown as ChartRow[], ratio, parsers));
  await Deno.rename(svgTmp, new URL("bench/results/lang.svg", root));
  console.log(`wrote bench/results/lang.json and bench/results/lang.svg`);
  return ratio <= 11 && checkMs[1] < 1000 ? 0 : 1;
}

interface ChartRow {
  lines: number;
  check_ms: number;
  check_with_syntax_error_ms: number;
  format_ms: number;
}

/** Bars per file size (check, check with an error, format), with the linear expectation. */
function chart(rows: ChartRow[], ratio: number, parsers: ParserRow[]): string {
  const w = 760;
  const x0 = 170;
  const max = Math.max(
    ...rows.flatMap((
      r,
    ) => [r.check_ms, r.check_with_syntax_error_ms, r.format_ms, rows[0].check_ms * 10]),
  );
  const scale = (w - x0 - 190) / max;
  let y = 48;
  let body = "";
  const colors = ["#4a7bd0", "#d9480f", "#a9c1ec"];
  for (const r of rows) {
    body += `<text x="10" y="${y + 30}" font-size="13" font-weight="bold">${
      r.lines.toLocaleString("en")
    } lines</text>`;
    const bars: [string, number][] = [
      ["check", r.check_ms],
      ["check, 1 syntax error", r.check_with_syntax_error_ms],
      ["fmt", r.format_ms],
    ];
    bars.forEach(([label, ms], i) => {
      body +=
        `<rect x="${x0}" y="${y}" width="${Math.max(1, ms * scale).toFixed(1)}" height="18" fill="${
          colors[i]
        }"/>` +
        `<text x="${(x0 + Math.max(1, ms * scale) + 6).toFixed(1)}" y="${
          y + 13
        }" font-size="12">${label} ${ms.toFixed(1)} ms</text>`;
      y += 21;
    });
    y += 16;
  }
  const lin = x0 + rows[0].check_ms * 10 * scale;
  body +=
    `<line x1="${lin.toFixed(1)}" y1="40" x2="${lin.toFixed(1)}" y2="${
      y - 10
    }" stroke="#868e96" stroke-dasharray="4 3"/>` +
    `<text x="${(lin + 4).toFixed(1)}" y="${
      y + 2
    }" font-size="11" fill="#495057">10 × the 1k check (linear)</text>`;
  const panel = parsersChart(parsers, y + 20, w);
  body += panel.svg;
  const h = y + 20 + panel.height + 12;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">` +
    `<rect width="${w}" height="${h}" fill="#fff"/>` +
    `<text x="10" y="24" font-size="14" font-weight="bold">vmdesc check: 1k vs 10k lines (median; 10k/1k = ${
      ratio.toFixed(2)
    })</text>` +
    body + `</svg>\n`;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
