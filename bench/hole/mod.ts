/**
 * bench/hole: what the PCI-hole strategies cost, side by side in one run.
 *
 *   deno task bench hole [-- --reps N --no-qemu]
 *   deno run -A bench/hole/mod.ts [--reps N] [--no-qemu]
 *
 * The same guest ELFs (examples/guests/scan.c: 8192 ECAM reads of function 0 on 256 buses,
 * 1-pass and 10-pass builds, and a RAM-control build of the same loop) run under
 *   - vmdesc (`deno run … cli/vmdesc.ts boot examples/guests/scan.vmdesc --kernel ELF`),
 *   - cvmm, a minimal synchronous C VMM (bench/hole/cvmm.c, built here with gcc),
 *   - QEMU microvm (pcie=on; its ECAM is at 0xE000_0000 too),
 * with the `trap` and `shadow` strategies where the VMM has them.
 *
 * Measures:
 * 1. Per-read cost = (median t10 - median t1) / (9 × 8192), where t is the wall time of the
 *    whole VMM process, from spawn to exit, taken by this driver with the same stopwatch for
 *    every VMM: start-up, payload loading and teardown cancel in the difference, and nothing
 *    self-reported enters the headline number. The VMMs' own run-loop times (vmdesc's
 *    --stats-json wall_ms, cvmm's ns_run_loop) give a second, lower-noise estimate.
 * 2. Exit counts per strategy (vmdesc --stats-json, cvmm --stats).
 * 3. Whole-process wall time, vmdesc vs QEMU, 1-pass and 10-pass.
 * 4. Host memory for the 256 MiB ECAM window: Pss and Rss of the VMM process
 *    (/proc/PID/smaps_rollup) while the guest, having scanned the window once, spins.
 * 5. vmdesc start-up, piece by piece (Deno start, CLI module graph, compile, boot).
 * Runs are interleaved (rep by rep, in an order shuffled from a fixed seed, each after a
 * 100 ms pause) so drifting host load hits every configuration alike.
 * Writes bench/results/hole.json and bench/results/hole.svg.
 */
import { buildGuests, guestPath } from "../../examples/guests/build.ts";
import { renderChart } from "./chart.ts";
import { vmdescDenoArgs } from "../vmdesc_command.ts";
import { prng } from "../../tests/fuzz/mutate.ts";
import { median, round } from "../stats.ts";
import { which } from "../../tests/skip.ts";
import { QEMU_BARE, QEMU_KVM_HOST } from "../../tests/qemu.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const RESULTS = ROOT + "bench/results/";
const MACHINE = ROOT + "examples/guests/scan.vmdesc";
const ECAM_BASE = 0xe000_0000;
const ECAM_SIZE = 256 * 2 ** 20; // buses 0..255, as in examples/guests/scan.vmdesc
const CMDLINE = `ecam=0x${ECAM_BASE.toString(16)}`;
const READS = 8192;
/** `deno run` and its flags as `deno task vmdesc` has them (bench/vmdesc_command.ts). */
const DENO_RUN = vmdescDenoArgs();
const QEMU_ARGS = [
  "-M",
  "microvm,pcie=on,x-option-roms=off,rtc=off,isa-serial=on",
  ...QEMU_KVM_HOST,
  "-m",
  "128",
  ...QEMU_BARE,
  "-device",
  "isa-debug-exit,iobase=0xf4,iosize=1",
];

type Vmm = "vmdesc" | "c" | "qemu";
type Config = "trap" | "shadow" | "ram";
type Passes = 1 | 10;

interface Sample {
  wallMs: number;
  /** Time the VMM itself reports for its run loop (ms), when it reports one. */
  loopMs: number | null;
  exits: Record<string, number> | null;
}

function parseArgs(args: string[]) {
  let reps = 5;
  let qemu = true;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--reps") reps = Math.max(1, parseInt(args[++i], 10) || reps);
    else if (args[i] === "--no-qemu") qemu = false;
    else if (args[i] === "-h" || args[i] === "--help") {
      console.log("usage: bench/hole/mod.ts [--reps N] [--no-qemu]");
      Deno.exit(0);
    } else throw new Error(`unknown argument ${args[i]}`);
  }
  return { reps, qemu };
}

/** QEMU from Debian; installed on demand when running as root (apt-get). */
async function findQemu(): Promise<string | null> {
  let q = which("qemu-system-x86_64");
  if (q) return q;
  if (Deno.uid?.() !== 0) return null;
  console.log("qemu-system-x86_64 not found: apt-get install -y qemu-system-x86 …");
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  await new Deno.Command("apt-get", {
    args: ["update", "-qq"],
    env,
    stdout: "null",
    stderr: "null",
  }).output()
    .catch(() => null);
  await new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", "qemu-system-x86"],
    env,
    stdout: "null",
    stderr: "null",
  }).output().catch(() => null);
  q = which("qemu-system-x86_64");
  return q;
}

async function buildCvmm(dir: string): Promise<string> {
  const out = `${dir}/cvmm`;
  const r = await new Deno.Command("gcc", {
    args: ["-O2", "-Wall", "-Wextra", "-o", out, ROOT + "bench/hole/cvmm.c"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error("gcc cvmm.c failed:\n" + new TextDecoder().decode(r.stderr));
  return out;
}

interface Tools {
  deno: string;
  cvmm: string;
  qemu: string | null;
  tmp: string;
}

function elfFor(config: Config, passes: Passes): string {
  const base = config === "ram" ? "scan-ram" : "scan";
  return guestPath(passes === 10 ? `${base}10` : base);
}

/** The argv that runs `vmm` on this configuration (strategy `shadow` for the RAM control). */
function command(
  t: Tools,
  vmm: Vmm,
  config: Config,
  passes: Passes,
  statsPath: string,
  hold = false,
): string[] {
  const elf = elfFor(config, passes);
  const strategy = config === "trap" ? "trap" : "shadow";
  const cmdline = hold ? `${CMDLINE} hold=1` : CMDLINE;
  switch (vmm) {
    case "vmdesc":
      return [
        t.deno,
        ...DENO_RUN,
        ROOT + "cli/vmdesc.ts",
        "boot",
        MACHINE,
        "--kernel",
        elf,
        "--cmdline",
        cmdline,
        "--hole-strategy",
        strategy,
        ...(statsPath ? ["--stats-json", statsPath] : []),
      ];
    case "c":
      return [
        t.cvmm,
        "--strategy",
        strategy,
        "--cmdline",
        cmdline,
        ...(statsPath ? ["--stats"] : []),
        elf,
      ];
    case "qemu":
      return [t.qemu!, ...QEMU_ARGS, "-kernel", elf, "-append", cmdline];
  }
}

/** Pause before each measured run (ms), so the previous VM's teardown is over. */
const SETTLE_MS = 100;

/** A shuffled copy (Fisher-Yates). */
function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const EXPECT = /^scan (ecam|ram): 8192 reads x (\d+) passes, (\d+) not all-ones$/m;

async function runOnce(t: Tools, vmm: Vmm, config: Config, passes: Passes): Promise<Sample> {
  const statsPath = vmm === "vmdesc" ? `${t.tmp}/stats-${crypto.randomUUID()}.json` : "";
  const argv = command(t, vmm, config, passes, statsPath || (vmm === "c" ? "stats" : ""));
  const t0 = performance.now();
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  })
    .output();
  const wallMs = performance.now() - t0;
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  const m = EXPECT.exec(stdout);
  // isa-debug-exit with value 0: status 1 for all three VMMs.
  if (out.code !== 1 || !m || Number(m[2]) !== passes) {
    throw new Error(
      `${vmm} ${config} ${passes}-pass: status ${out.code}\n${stdout}\n${stderr}`.slice(0, 2000),
    );
  }
  let loopMs: number | null = null;
  let exits: Record<string, number> | null = null;
  if (vmm === "vmdesc") {
    const s = JSON.parse(await Deno.readTextFile(statsPath));
    await Deno.remove(statsPath);
    loopMs = s.wall_ms;
    const host =
      (s.devices as { kind: string; mmio_exits: number; model: Record<string, number> }[])
        .find((d) => d.kind === "pci_host");
    exits = {
      total: s.exits_total,
      mmio: s.exits?.mmio ?? 0,
      io: s.exits?.io ?? 0,
      ecam: host?.mmio_exits ?? 0,
      ecam_reads: host?.model.ecam_reads ?? 0,
    };
  } else if (vmm === "c") {
    const line = stderr.split("\n").find((l) => l.startsWith("{"));
    const s = JSON.parse(line!);
    loopMs = s.ns_run_loop / 1e6;
    exits = {
      total: s.exits_io + s.exits_mmio_read + s.exits_mmio_write,
      mmio: s.exits_mmio_read + s.exits_mmio_write,
      io: s.exits_io,
      ecam: s.exits_ecam,
      ecam_reads: s.exits_mmio_read,
    };
  }
  return { wallMs, loopMs, exits };
}

/** Another process's /proc file; through cat(1): Deno wants --allow-all for /proc/PID. */
async function readProc(path: string): Promise<string> {
  const r = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "piped" })
    .output();
  if (!r.success) throw new Error(`cannot read ${path}: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/** Pss/Rss of a VMM process whose guest has scanned the window once and now spins. */
async function memoryOf(t: Tools, vmm: Vmm, config: Config): Promise<Record<string, number>> {
  const argv = command(t, vmm, config, 1, "", true);
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  })
    .spawn();
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    while (!text.includes("scan: holding")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${vmm} ${config}: ended before holding:\n${text}`);
      text += dec.decode(value, { stream: true });
    }
    const rollup = await readProc(`/proc/${child.pid}/smaps_rollup`);
    const kib: Record<string, number> = {};
    for (const line of rollup.split("\n")) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m) kib[m[1]] = Number(m[2]);
    }
    // The window's own share, free of the noise of everything else in the process (Deno's
    // heap moves by MiBs between runs): every mapping in the 256 MiB that end with the last
    // mapping of the all-ones memfd (vmdesc and cvmm name it): the aliases plus the
    // private config pages among them.
    const vmas: { lo: bigint; hi: bigint; ones: boolean; pss: number; rss: number }[] = [];
    for (const line of (await readProc(`/proc/${child.pid}/smaps`)).split("\n")) {
      const h = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
      if (h) {
        vmas.push({
          lo: BigInt("0x" + h[1]),
          hi: BigInt("0x" + h[2]),
          ones: /memfd:(vmdesc-ecam-ones|cvmm-ones)/.test(line),
          pss: 0,
          rss: 0,
        });
        continue;
      }
      const m = /^(Pss|Rss):\s+(\d+) kB/.exec(line);
      if (m && vmas.length) vmas[vmas.length - 1][m[1] === "Pss" ? "pss" : "rss"] += Number(m[2]);
    }
    const ones = vmas.filter((v) => v.ones);
    let windowPss = 0, windowRss = 0, windowMaps = 0;
    if (ones.length) {
      // The window ends with an alias (nothing sits on the last bus) and is 256 MiB long.
      const hi = ones[ones.length - 1].hi, lo = hi - BigInt(ECAM_SIZE);
      for (const v of vmas.filter((v) => v.lo >= lo && v.hi <= hi)) {
        windowPss += v.pss;
        windowRss += v.rss;
        windowMaps++;
      }
    }
    return {
      pss_kib: kib.Pss,
      rss_kib: kib.Rss,
      pss_shmem_kib: kib.Pss_Shmem ?? 0,
      window_pss_kib: windowPss,
      window_rss_kib: windowRss,
      window_mappings: windowMaps,
    };
  } finally {
    clearTimeout(deadline);
    // vmdesc ends a guest cleanly on SIGINT; the others are simply killed.
    try {
      child.kill(vmm === "vmdesc" ? "SIGINT" : "SIGKILL");
    } catch { /* already gone */ }
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await child.status;
    clearTimeout(killer);
  }
}

async function wallOf(argv: string[], okCodes: number[]): Promise<number> {
  const t0 = performance.now();
  const r = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "null",
    stderr: "null",
    stdin: "null",
  })
    .output();
  const ms = performance.now() - t0;
  if (!okCodes.includes(r.code)) throw new Error(`${argv.join(" ")}: status ${r.code}`);
  return ms;
}

/** vmdesc start-up, piece by piece, as median wall times of whole processes. */
async function startup(t: Tools, reps: number): Promise<Record<string, number>> {
  const empty = `${t.tmp}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  const vm = (args: string[]) => [t.deno, ...DENO_RUN, ROOT + "cli/vmdesc.ts", ...args];
  const steps: [string, string[], number[]][] = [
    ["deno_empty_script", [t.deno, "run", empty], [0]],
    ["vmdesc_version", vm(["--version"]), [0]],
    ["vmdesc_check", vm(["check", MACHINE]), [0]],
    ["vmdesc_plan_json", vm(["plan", "--json", MACHINE]), [0]],
    [
      "vmdesc_boot_1pass_shadow",
      vm(["boot", MACHINE, "--kernel", elfFor("shadow", 1), "--cmdline", CMDLINE]),
      [1],
    ],
  ];
  const samples: Record<string, number[]> = {};
  // The probe loads the same modules with the same V8 flags (a code cache made under
  // other flags would be rejected, and each process would rewrite the other's).
  const probe = [
    t.deno,
    ...DENO_RUN,
    ROOT + "bench/hole/startup_probe.ts",
    MACHINE,
    elfFor("shadow", 1),
    CMDLINE,
    "shadow",
  ];
  for (let r = 0; r < reps; r++) {
    for (const [name, argv, ok] of steps) (samples[name] ??= []).push(await wallOf(argv, ok));
    // Phases inside one `boot`-like process (ms since the process's time origin).
    const out = await new Deno.Command(probe[0], {
      args: probe.slice(1),
      stdout: "piped",
      stderr: "null",
    }).output();
    const marks = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
    let prev = 0;
    for (
      const k of [
        "script_start",
        "lang_loaded",
        "compiled",
        "runtime_loaded",
        "machine_created",
        "ran",
        "closed",
      ]
    ) {
      (samples[`phase_${k}`] ??= []).push(marks[k] - prev);
      prev = marks[k];
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v), 1)]));
}

async function main(): Promise<number> {
  const opts = parseArgs(Deno.args);
  // Deno's own stat of a device file needs --allow-all; ask test(1) instead.
  if (!(await new Deno.Command("test", { args: ["-c", "/dev/kvm"] }).output()).success) {
    console.error("bench/hole: /dev/kvm is absent: nothing to measure");
    return 1;
  }
  await buildGuests(["scan", "scan10", "scan-ram", "scan-ram10"]);
  // Other work on the host skews wall times; the load is recorded with the results.
  const loadStart = Deno.loadavg();
  const tmp = await Deno.makeTempDir({ prefix: "vmdesc-bench-hole-" });
  try {
    const tools: Tools = {
      deno: Deno.execPath(),
      cvmm: await buildCvmm(tmp),
      qemu: opts.qemu ? await findQemu() : null,
      tmp,
    };
    const qemuVersion = tools.qemu
      ? new TextDecoder().decode(
        (await new Deno.Command(tools.qemu, { args: ["--version"] }).output()).stdout,
      )
        .split("\n")[0]
      : null;
    if (!tools.qemu) console.log("QEMU not available: its columns are left out");

    const matrix: [Vmm, Config][] = [
      ["vmdesc", "trap"],
      ["vmdesc", "shadow"],
      ["vmdesc", "ram"],
      ["c", "trap"],
      ["c", "shadow"],
      ["c", "ram"],
      ...(tools.qemu ? [["qemu", "trap"], ["qemu", "ram"]] as [Vmm, Config][] : []),
    ];
    const samples = new Map<string, Sample[]>();
    const key = (v: Vmm, c: Config, p: Passes) => `${v}/${c}/${p}`;
    // One warm-up round (page cache, Deno's module cache), not recorded.
    for (const [v, c] of matrix) await runOnce(tools, v, c, 1);
    // Each rep runs every (VMM, configuration, passes) once, in an order shuffled anew (from
    // a fixed seed), so no configuration always follows the same neighbour: the kernel's
    // teardown of the previous VM, or QEMU's, would otherwise weigh on the same one each
    // time. A short pause before each run lets that teardown finish.
    const random = prng(0x5eed); // deterministic: a run's order can be reproduced
    const runs = matrix.flatMap(([v, c]) => ([1, 10] as Passes[]).map((p) => [v, c, p] as const));
    for (let r = 0; r < opts.reps; r++) {
      console.log(`rep ${r + 1}/${opts.reps}`);
      for (const [v, c, p] of shuffle(runs, random)) {
        const k = key(v, c, p);
        if (!samples.has(k)) samples.set(k, []);
        await new Promise((done) => setTimeout(done, SETTLE_MS));
        samples.get(k)!.push(await runOnce(tools, v, c, p));
      }
    }

    const perRead: Record<string, Record<string, number>> = {};
    const perReadLoop: Record<string, Record<string, number>> = {};
    const perReadLoopMin: Record<string, Record<string, number>> = {};
    const perReadBest: Record<string, Record<string, number>> = {};
    const wholeMs: Record<string, Record<string, number>> = {};
    const exits: Record<string, Record<string, unknown>> = {};
    for (const [v, c] of matrix) {
      const s1 = samples.get(key(v, c, 1))!, s10 = samples.get(key(v, c, 10))!;
      const w1 = median(s1.map((s) => s.wallMs)), w10 = median(s10.map((s) => s.wallMs));
      (perRead[v] ??= {})[c] = round(((w10 - w1) * 1000) / (9 * READS));
      const b1 = Math.min(...s1.map((s) => s.wallMs)), b10 = Math.min(...s10.map((s) => s.wallMs));
      (perReadBest[v] ??= {})[c] = round(((b10 - b1) * 1000) / (9 * READS));
      (wholeMs[v] ??= {})[`${c}_1pass`] = round(w1, 1);
      wholeMs[v][`${c}_10pass`] = round(w10, 1);
      if (s1[0].loopMs !== null) {
        const l1 = median(s1.map((s) => s.loopMs!)), l10 = median(s10.map((s) => s.loopMs!));
        (perReadLoop[v] ??= {})[c] = round(((l10 - l1) * 1000) / (9 * READS));
        const m1 = Math.min(...s1.map((s) => s.loopMs!)),
          m10 = Math.min(...s10.map((s) => s.loopMs!));
        (perReadLoopMin[v] ??= {})[c] = round(((m10 - m1) * 1000) / (9 * READS));
      }
      if (s1[0].exits) (exits[v] ??= {})[c] = { "1pass": s1[0].exits, "10pass": s10[0].exits };
    }

    console.log("memory (guest holding after one scan) …");
    const memory: Record<string, Record<string, Record<string, number>>> = {};
    const memRuns: [Vmm, Config][] = [["vmdesc", "trap"], ["vmdesc", "shadow"], ["c", "trap"], [
      "c",
      "shadow",
    ]];
    if (tools.qemu) memRuns.push(["qemu", "trap"]);
    const memSamples = new Map<string, Record<string, number>[]>();
    for (let r = 0; r < Math.min(opts.reps, 3); r++) {
      for (const [v, c] of memRuns) {
        const k = `${v}/${c}`;
        if (!memSamples.has(k)) memSamples.set(k, []);
        memSamples.get(k)!.push(await memoryOf(tools, v, c));
      }
    }
    for (const [v, c] of memRuns) {
      const xs = memSamples.get(`${v}/${c}`)!;
      (memory[v] ??= {})[c] = Object.fromEntries(
        Object.keys(xs[0]).map((f) => [f, median(xs.map((x) => x[f]))]),
      );
    }
    const addedPss = (v: string) => memory[v].shadow.pss_kib - memory[v].trap.pss_kib;
    const addedRss = (v: string) => memory[v].shadow.rss_kib - memory[v].trap.rss_kib;

    console.log("start-up pieces …");
    const start = await startup(tools, opts.reps);

    const ratio = (a: number, b: number) => round(a / b, 3);
    const ratios = {
      vmdesc_over_c_trap: ratio(perRead.vmdesc.trap, perRead.c.trap),
      vmdesc_over_c_shadow: ratio(perRead.vmdesc.shadow, perRead.c.shadow),
      vmdesc_shadow_over_ram: ratio(perRead.vmdesc.shadow, perRead.vmdesc.ram),
      c_shadow_over_ram: ratio(perRead.c.shadow, perRead.c.ram),
      vmdesc_trap_over_shadow: ratio(perRead.vmdesc.trap, perRead.vmdesc.shadow),
      best_run_loop_vmdesc_over_c_trap: ratio(perReadLoopMin.vmdesc.trap, perReadLoopMin.c.trap),
      best_run_loop_vmdesc_over_c_shadow: ratio(
        perReadLoopMin.vmdesc.shadow,
        perReadLoopMin.c.shadow,
      ),
      best_run_loop_vmdesc_shadow_over_ram: ratio(
        perReadLoopMin.vmdesc.shadow,
        perReadLoopMin.vmdesc.ram,
      ),
      run_loop_vmdesc_over_c_trap: ratio(perReadLoop.vmdesc.trap, perReadLoop.c.trap),
      run_loop_vmdesc_over_c_shadow: ratio(perReadLoop.vmdesc.shadow, perReadLoop.c.shadow),
      run_loop_vmdesc_shadow_over_ram: ratio(perReadLoop.vmdesc.shadow, perReadLoop.vmdesc.ram),
      run_loop_c_shadow_over_ram: ratio(perReadLoop.c.shadow, perReadLoop.c.ram),
      ...(tools.qemu
        ? {
          vmdesc_over_qemu_process_1pass: ratio(
            wholeMs.vmdesc.shadow_1pass,
            wholeMs.qemu.trap_1pass,
          ),
          vmdesc_over_qemu_process_10pass: ratio(
            wholeMs.vmdesc.shadow_10pass,
            wholeMs.qemu.trap_10pass,
          ),
          vmdesc_trap_over_qemu_process_1pass: ratio(
            wholeMs.vmdesc.trap_1pass,
            wholeMs.qemu.trap_1pass,
          ),
          vmdesc_trap_over_qemu_process_10pass: ratio(
            wholeMs.vmdesc.trap_10pass,
            wholeMs.qemu.trap_10pass,
          ),
        }
        : {}),
    };
    const shadowExits = (exits.vmdesc.shadow as Record<string, Record<string, number>>)["10pass"];
    const targets = [
      {
        target: "shadow: zero ECAM read exits (vmdesc, 10-pass)",
        value: shadowExits.ecam_reads,
        limit: 0,
        met: shadowExits.ecam_reads === 0,
      },
      {
        target: "shadow per-read ≤ 1.10 × RAM control (vmdesc, run loop, best of N)",
        value: ratios.best_run_loop_vmdesc_shadow_over_ram,
        limit: 1.1,
        met: ratios.best_run_loop_vmdesc_shadow_over_ram <= 1.1,
      },
      {
        target: "vmdesc/C per-read, trap ≤ 1.10 (run loop, best of N)",
        value: ratios.best_run_loop_vmdesc_over_c_trap,
        limit: 1.1,
        met: ratios.best_run_loop_vmdesc_over_c_trap <= 1.1,
      },
      {
        target: "vmdesc/C per-read, shadow ≤ 1.05 (run loop, best of N)",
        value: ratios.best_run_loop_vmdesc_over_c_shadow,
        limit: 1.05,
        met: ratios.best_run_loop_vmdesc_over_c_shadow <= 1.05,
      },
      {
        target:
          "256 MiB ECAM under shadow adds ≤ 2048 KiB Pss (vmdesc; the window's own mappings, smaps)",
        value: memory.vmdesc.shadow.window_pss_kib,
        limit: 2048,
        met: memory.vmdesc.shadow.window_pss_kib <= 2048,
      },
      ...(tools.qemu
        ? [
          {
            target: "vmdesc boot ≤ 0.8 × QEMU, whole process, 1-pass",
            value: ratios.vmdesc_over_qemu_process_1pass!,
            limit: 0.8,
            met: ratios.vmdesc_over_qemu_process_1pass! <= 0.8,
          },
          {
            target: "vmdesc boot ≤ 0.5 × QEMU, whole process, 10-pass",
            value: ratios.vmdesc_over_qemu_process_10pass!,
            limit: 0.5,
            met: ratios.vmdesc_over_qemu_process_10pass! <= 0.5,
          },
        ]
        : []),
    ];

    const doc = {
      benchmark: "hole",
      date: new Date().toISOString(),
      command: "deno task bench hole" + (Deno.args.length ? ` -- ${Deno.args.join(" ")}` : ""),
      host: {
        kernel: Deno.osRelease(),
        cpus: navigator.hardwareConcurrency,
        deno: Deno.version.deno,
        qemu: qemuVersion,
        loadavg_start: loadStart,
        loadavg_end: Deno.loadavg(),
      },
      reps: opts.reps,
      method: {
        per_read:
          "(median t10 - median t1) / (9 * 8192); t = whole-process wall time taken by the driver (spawn to exit)",
        per_read_best:
          "(min t10 - min t1) / (9 * 8192) over the N whole-process runs: the chart's headline, one stopwatch for all three VMMs, robust to other work on the host",
        per_read_run_loop:
          "same formula with the VMM's own run-loop time, CLOCK_MONOTONIC from the first KVM_RUN to the guest's exit (vmdesc --stats-json wall_ms, cvmm ns_run_loop)",
        targets:
          "vmdesc vs C and shadow vs RAM are judged on the run-loop measure (the same span on the same clock in both VMMs, free of process start-up noise) with the best (minimum) of the N runs of each configuration, since other work on a shared host only ever adds time; medians and the whole-process measure (the only one QEMU allows) are reported beside it. vmdesc vs QEMU is judged on median whole-process times",
        memory:
          "/proc/PID/smaps_rollup (whole process) and /proc/PID/smaps summed over the all-ones memfd mappings (the window alone), while the guest spins after one full scan (8192 function-0 pages touched); medians of up to 3 runs",
        guests:
          "examples/guests/scan.c: 6 instructions per read, the RAM control runs the same instructions over RAM",
      },
      per_read_us: perRead,
      per_read_best_us: perReadBest,
      per_read_run_loop_us: perReadLoop,
      per_read_run_loop_best_us: perReadLoopMin,
      whole_process_ms: wholeMs,
      exits,
      memory_kib: memory,
      shadow_adds_kib: {
        vmdesc: {
          pss: addedPss("vmdesc"),
          rss: addedRss("vmdesc"),
          window_pss: memory.vmdesc.shadow.window_pss_kib,
          window_rss: memory.vmdesc.shadow.window_rss_kib,
        },
        c: {
          pss: addedPss("c"),
          rss: addedRss("c"),
          window_pss: memory.c.shadow.window_pss_kib,
          window_rss: memory.c.shadow.window_rss_kib,
        },
      },
      startup_ms: start,
      ratios,
      targets,
      samples: Object.fromEntries(
        [...samples].map((
          [k, v],
        ) => [
          k,
          v.map((s) => ({
            wall_ms: round(s.wallMs, 1),
            loop_ms: s.loopMs === null ? null : round(s.loopMs, 1),
          })),
        ]),
      ),
    };
    await Deno.mkdir(RESULTS, { recursive: true });
    await Deno.writeTextFile(RESULTS + "hole.json", JSON.stringify(doc, null, 2) + "\n");
    await Deno.writeTextFile(RESULTS + "hole.svg", renderChart(doc));

    // ── report ──
    const f = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(2));
    console.log("\nper-read cost, µs (whole-process t10 - t1; run-loop estimate in brackets)");
    console.log("            trap              shadow            RAM control");
    for (const v of Object.keys(perRead)) {
      const cell = (c: string) => `${f(perRead[v][c])} [${f(perReadLoop[v]?.[c])}]`.padEnd(18);
      console.log(`  ${v.padEnd(8)}  ${cell("trap")}${cell("shadow")}${cell("ram")}`);
    }
    console.log("best-of-N whole process, µs: " + JSON.stringify(perReadBest));
    console.log("best-of-N run loop, µs: " + JSON.stringify(perReadLoopMin));
    console.log("\nexits, 10-pass (total / ECAM)");
    for (const v of Object.keys(exits)) {
      for (const c of Object.keys(exits[v])) {
        const e = (exits[v][c] as Record<string, Record<string, number>>)["10pass"];
        console.log(`  ${v.padEnd(8)} ${c.padEnd(7)} ${e.total} / ${e.ecam}`);
      }
    }
    console.log("\nwhole process, ms (median)");
    for (const v of Object.keys(wholeMs)) {
      console.log(`  ${v.padEnd(8)} ${JSON.stringify(wholeMs[v])}`);
    }
    console.log("\nmemory, KiB");
    for (const v of Object.keys(memory)) {
      for (const c of Object.keys(memory[v])) {
        const x = memory[v][c];
        console.log(
          `  ${v.padEnd(8)} ${
            c.padEnd(7)
          } process Pss ${x.pss_kib}  Rss ${x.rss_kib}   window Pss ${x.window_pss_kib}  Rss ${x.window_rss_kib} (${x.window_mappings} maps)`,
        );
      }
    }
    console.log(
      `  shadow adds: vmdesc Pss ${addedPss("vmdesc")} KiB (Rss ${addedRss("vmdesc")} KiB); C Pss ${
        addedPss("c")
      } KiB (Rss ${addedRss("c")} KiB)`,
    );
    console.log("\nstart-up, ms (median whole process)");
    for (const [k, v] of Object.entries(start)) console.log(`  ${k.padEnd(26)} ${v}`);
    console.log("\nratios " + JSON.stringify(ratios, null, 1).replace(/\n\s*/g, " "));
    console.log("\ntargets");
    for (const t of targets) {
      console.log(`  ${t.met ? "met   " : "MISSED"}  ${t.target}: ${t.value}`);
    }
    console.log(`\nwrote ${RESULTS}hole.json and hole.svg`);
    return 0;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
