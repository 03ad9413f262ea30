/**
 * bench/lsp: time from a `didChange` to the `publishDiagnostics` for that version, over
 * the real stdio protocol, while editing a 1,000-line file — with the server parsing
 * through lang's incremental Matcher (default) and with `--full-reparse` (from scratch).
 * Both servers run with `--debounce 0` so the figure is the work, not the waiting.
 * In-process parse timings (incremental update+parse vs a fresh parse) are reported too,
 * since the full check (imports, machines, lowering) is the same in both modes.
 *
 *   deno task bench lsp [-- --edits 80]
 *
 * Writes bench/results/lsp.json and bench/results/lsp.svg.
 */
import { generate } from "../lang/mod.ts";
import { createIncrementalParser, parse } from "../../lang/mod.ts";
import { LspClient, type Message } from "../../tests/lsp/jsonrpc_client.ts";
import { fileUri, ROOT } from "../../tests/lsp/helpers.ts";
import { vmdescArgv } from "../vmdesc_command.ts";

interface Stats {
  median: number;
  p95: number;
  min: number;
  max: number;
  n: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  const m = s.length >> 1;
  return {
    median: round(s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2),
    p95: round(q(0.95)),
    min: round(s[0]),
    max: round(s[s.length - 1]),
    n: s.length,
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** One keystroke-like edit: toggle the digit of a `cpus N` line in the middle of the file. */
function edits(text: string, count: number) {
  const lines = text.split("\n");
  const targets: number[] = [];
  lines.forEach((l, i) => {
    if (/^ {2}cpus \d$/.test(l)) targets.push(i);
  });
  const line = targets[targets.length >> 1];
  const character = lines[line].length - 1;
  const digit = lines[line][character];
  const out = [];
  for (let k = 0; k < count; k++) {
    out.push({
      range: { start: { line, character }, end: { line, character: character + 1 } },
      text: k % 2 === 0 ? (digit === "1" ? "2" : "1") : digit,
    });
  }
  return out;
}

async function measure(
  path: string,
  text: string,
  mode: "incremental" | "full",
  n: number,
  warmup: number,
) {
  // Started as `deno task vmdesc lsp` would start it (the task's V8 flags and permissions).
  const [, ...args] = vmdescArgv(Deno.execPath(), ["lsp", "--stdio", "--debounce", "0"]);
  if (mode === "full") args.push("--full-reparse");
  const c = LspClient.start(Deno.execPath(), args, { cwd: ROOT });
  try {
    await c.request(
      "initialize",
      { processId: Deno.pid, rootUri: fileUri(ROOT), capabilities: {} },
      30_000,
    );
    await c.notify("initialized", {});
    const uri = fileUri(path);
    const isFor = (v: number) => (m: Message) =>
      m.method === "textDocument/publishDiagnostics" &&
      (m.params as { uri: string; version?: number }).uri === uri &&
      (m.params as { version?: number }).version === v;
    let wait = c.waitFor(isFor(1), 30_000);
    await c.notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "vmdesc", version: 1, text },
    });
    const first = await wait;
    const initialDiagnostics = (first.params as { diagnostics: unknown[] }).diagnostics.length;
    const times: number[] = [];
    const all = edits(text, n + warmup);
    for (let k = 0; k < all.length; k++) {
      const version = k + 2;
      wait = c.waitFor(isFor(version), 30_000);
      const t0 = performance.now();
      await c.notify("textDocument/didChange", {
        textDocument: { uri, version },
        contentChanges: [all[k]],
      });
      await wait;
      if (k >= warmup) times.push(performance.now() - t0);
    }
    await c.request("shutdown", null);
    await c.notify("exit", null);
    const status = await c.close(10_000);
    if (status.code !== 0) throw new Error(`server exited ${status.code}\n${c.stderr}`);
    return { stats: stats(times), initialDiagnostics };
  } catch (e) {
    await c.kill();
    throw e;
  }
}

function parseTimings(text: string, n: number) {
  const e = edits(text, n + 5);
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
  const inc = createIncrementalParser("bench.vmdesc", text);
  inc.parse();
  const incT: number[] = [];
  const fullT: number[] = [];
  let cur = text;
  e.forEach((ed, k) => {
    const off = lineStarts[ed.range.start.line] + ed.range.start.character;
    let t0 = performance.now();
    inc.update(off, off + 1, ed.text);
    inc.parse();
    const ti = performance.now() - t0;
    cur = cur.slice(0, off) + ed.text + cur.slice(off + 1);
    t0 = performance.now();
    parse(cur, "bench.vmdesc");
    const tf = performance.now() - t0;
    if (k >= 5) {
      incT.push(ti);
      fullT.push(tf);
    }
  });
  return { incremental: stats(incT), full: stats(fullT) };
}

function svg(result: { modes: Record<string, { stats: Stats }> }): string {
  const rows = Object.entries(result.modes);
  const max = Math.max(...rows.map(([, r]) => r.stats.p95)) * 1.15;
  const w = 640, barH = 22, gap = 34, left = 190, top = 40;
  const x = (v: number) => left + (v / max) * (w - left - 40);
  let body = "";
  rows.forEach(([name, r], i) => {
    const y = top + i * (2 * barH + gap);
    body += `<text x="10" y="${y + barH}" font-size="13">${name}</text>`;
    body += `<rect x="${left}" y="${y}" width="${
      x(r.stats.median) - left
    }" height="${barH}" fill="#4a7bd0"/>`;
    body += `<text x="${x(r.stats.median) + 4}" y="${
      y + 15
    }" font-size="12">median ${r.stats.median} ms</text>`;
    body += `<rect x="${left}" y="${y + barH + 2}" width="${
      x(r.stats.p95) - left
    }" height="${barH}" fill="#a9c1ec"/>`;
    body += `<text x="${x(r.stats.p95) + 4}" y="${
      y + barH + 17
    }" font-size="12">p95 ${r.stats.p95} ms</text>`;
  });
  const h = top + rows.length * (2 * barH + gap);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">` +
    `<text x="10" y="22" font-size="14" font-weight="bold">vmdesc lsp: didChange → publishDiagnostics (1,000 lines)</text>` +
    body + `</svg>\n`;
}

/** The text with one broken line early in the file (a stray `@`), far from the edits. */
function withSyntaxError(text: string): string {
  const at = text.indexOf("  cpus ");
  return text.slice(0, at) + "  @ oops\n" + text.slice(at);
}

export async function run(args: string[] = []): Promise<number> {
  const ei = args.indexOf("--edits");
  const n = ei >= 0 ? Number(args[ei + 1]) : 60;
  const text = generate(1_000);
  const lines = text.split("\n").length - 1;
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-bench-lsp-" });
  try {
    const path = `${dir}/bench.vmdesc`;
    await Deno.writeTextFile(path, text);
    await Deno.writeTextFile(`${dir}/guest.elf`, ""); // the payload exists: no W0006 noise
    // Two situations: edits to a valid file, and edits while a syntax error sits elsewhere
    // in the file (typing usually leaves one). lang parses valid text with its fast parser
    // and falls back to Ohm on errors, where the incremental Matcher can help.
    const scenarios = [["valid", text], ["syntax-error", withSyntaxError(text)]] as const;
    const modes: Record<string, { stats: Stats; initialDiagnostics: number }> = {};
    for (const [scenario, body] of scenarios) {
      for (const mode of ["incremental", "full"] as const) {
        const key = `${scenario}/${mode}`;
        const r = await measure(path, body, mode, n, 5);
        modes[key] = r;
        const s = r.stats;
        console.log(
          `${key.padEnd(24)} didChange → publishDiagnostics: median ${s.median} ms, ` +
            `p95 ${s.p95} ms (min ${s.min}, max ${s.max}, n=${s.n}, ${lines} lines, ` +
            `${r.initialDiagnostics} diagnostics)`,
        );
      }
    }
    const p = parseTimings(text, n);
    console.log(
      `parse only, valid text (in process): incremental median ${p.incremental.median} ms ` +
        `(p95 ${p.incremental.p95}), full median ${p.full.median} ms (p95 ${p.full.p95})`,
    );
    const ratio = (s: string) =>
      round(modes[`${s}/full`].stats.median / modes[`${s}/incremental`].stats.median);
    const parseRatio = round(p.full.median / p.incremental.median);
    console.log(
      `ratio full/incremental (medians): valid ${ratio("valid")}, ` +
        `with a syntax error ${ratio("syntax-error")}, parse only ${parseRatio}`,
    );
    const result = {
      benchmark: "lsp",
      date: new Date().toISOString(),
      deno: Deno.version.deno,
      lines,
      edits: n,
      debounce_ms: 0,
      modes,
      parse_only: p,
      ratio_full_over_incremental: { valid: ratio("valid"), syntax_error: ratio("syntax-error") },
      parse_ratio_full_over_incremental: parseRatio,
      command: "deno task bench lsp",
    };
    const out = new URL("../results/", import.meta.url);
    await Deno.mkdir(out, { recursive: true });
    await Deno.writeTextFile(new URL("lsp.json.tmp", out), JSON.stringify(result, null, 2) + "\n");
    await Deno.rename(new URL("lsp.json.tmp", out), new URL("lsp.json", out));
    await Deno.writeTextFile(new URL("lsp.svg", out), svg(result));
    console.log("wrote bench/results/lsp.json and bench/results/lsp.svg");
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
