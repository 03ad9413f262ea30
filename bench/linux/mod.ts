/**
 * bench/linux: time from process start to the first line of the guest's init, for the same
 * Linux guest under three VMMs, side by side in one run:
 *   - vmdesc: `vmdesc boot bench/linux/linux.vmdesc` (examples/linux_busybox.vmdesc with
 *     one vCPU), started as `deno task vmdesc` starts it;
 *   - QEMU microvm (`-M microvm -enable-kvm -cpu host`, ACPI on, no option ROMs);
 *   - cloader (bench/linux/cloader.c), a minimal C loader: one vCPU, a 16550, no ACPI;
 * all with Debian's cloud kernel (the bzImage through the 64-bit boot protocol, its own
 * decompressor), the busybox initramfs of examples/linux/initramfs/, 512 MiB, one vCPU and
 * the command line "console=ttyS0 quiet".
 *
 *   deno task bench linux [-- --reps N]
 *
 * The stopwatch is this driver's: from spawning the VMM to reading init's first line on
 * its stdout, the same way for every VMM. vmdesc and QEMU are then left to power off (the
 * time to their exit is recorded too); cloader has no ACPI to power off with and is killed.
 * Runs are interleaved rep by rep in an order shuffled from a fixed seed, each after a
 * 100 ms pause, so drifting host load hits every VMM alike; the summary gives best and
 * median and the ratios vmdesc/QEMU and vmdesc/C of each.
 *
 * Needs a KVM that runs Linux to userspace (tests/skip.ts linuxKvmAbsent), qemu-system-x86_64
 * and a built cloader (gcc, or bench/linux/build/cloader built beforehand); on a host whose
 * KVM cannot, run it inside the nested test bed with QEMU carried in. Writes
 * bench/results/linux.json and bench/results/linux.svg.
 */
import { vmdescDenoArgs } from "../vmdesc_command.ts";
import { prng } from "../../tests/fuzz/mutate.ts";
import { linuxKvmAbsent, which } from "../../tests/skip.ts";
import { median, round } from "../stats.ts";
import { QEMU_BARE } from "../../tests/qemu.ts";
import { ensureKernel } from "../../tests/linux/kernel.ts";
import { buildInitramfs } from "../../examples/linux/initramfs/build.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const HERE = `${ROOT}bench/linux/`;
const RESULTS = `${ROOT}bench/results/`;
const MACHINE = `${HERE}linux.vmdesc`;
const CLOADER_SRC = `${HERE}cloader.c`;
const CLOADER = `${HERE}build/cloader`;
const CMDLINE = "console=ttyS0 quiet";
const MEMORY_MIB = 512;
const INIT_LINE = "vmdesc-init: hello from userspace";
/** A run that has not reached init by then is a failure, not a sample. */
const INIT_TIMEOUT_MS = 300_000;
/** How long a VMM that powers off gets to exit after init's line before it is killed. */
const EXIT_GRACE_MS = 60_000;

type Vmm = "vmdesc" | "qemu" | "c";
const VMMS: Vmm[] = ["vmdesc", "qemu", "c"];
const NAMES: Record<Vmm, string> = { vmdesc: "vmdesc", qemu: "QEMU microvm", c: "C loader" };

interface Sample {
  /** Spawn → init's first line on stdout. */
  initMs: number;
  /** Spawn → the process ended by itself (vmdesc and QEMU power off), else null. */
  exitMs: number | null;
  exitCode: number | null;
}

function parseArgs(args: string[]) {
  let reps = 5;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--reps") reps = Math.max(1, parseInt(args[++i], 10) || reps);
    else if (args[i] === "-h" || args[i] === "--help") {
      console.log("usage: bench/linux/mod.ts [--reps N]");
      Deno.exit(0);
    } else throw new Error(`unknown argument ${args[i]}`);
  }
  return { reps };
}

/** The C loader, rebuilt with gcc when its source is newer; a prebuilt one without gcc. */
async function cloader(): Promise<string> {
  const mtime = async (p: string) => (await Deno.stat(p).catch(() => null))?.mtime?.getTime();
  const built = await mtime(CLOADER);
  if (built !== undefined && built >= (await mtime(CLOADER_SRC))!) return CLOADER;
  if (!(which("gcc"))) {
    throw new Error(`no gcc to build ${CLOADER} (build it where gcc is, then carry it in)`);
  }
  await Deno.mkdir(`${HERE}build`, { recursive: true });
  const r = await new Deno.Command("gcc", {
    args: ["-O2", "-Wall", "-Wextra", "-Werror", "-o", `${CLOADER}.part`, CLOADER_SRC],
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`gcc cloader.c failed:\n${new TextDecoder().decode(r.stderr)}`);
  await Deno.rename(`${CLOADER}.part`, CLOADER);
  return CLOADER;
}

/** Spawns argv, times init's first line on stdout, lets it end (or kills it). */
async function sample(argv: string[], killAfterInit: boolean): Promise<Sample> {
  const t0 = performance.now();
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  let initMs: number | null = null;
  let seen = "";
  const dec = new TextDecoder();
  const timer = setTimeout(() => child.kill("SIGKILL"), INIT_TIMEOUT_MS);
  const reader = child.stdout.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen = (seen + dec.decode(value, { stream: true })).slice(-4096);
      if (seen.includes(INIT_LINE)) {
        initMs = performance.now() - t0;
        break;
      }
    }
  } finally {
    clearTimeout(timer);
  }
  if (initMs === null) {
    const status = await child.status;
    throw new Error(
      `${argv[0]} ended (status ${status.code}) before init's line:\n${
        seen.slice(-1500)
      }\n${await errText}`,
    );
  }
  // Keep draining stdout so the VMM never blocks on a full pipe while powering off.
  const drain = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  let exitMs: number | null = null;
  let exitCode: number | null = null;
  if (killAfterInit) child.kill("SIGKILL");
  else {
    const grace = setTimeout(() => child.kill("SIGKILL"), EXIT_GRACE_MS);
    const status = await child.status;
    clearTimeout(grace);
    if (status.signal === null) {
      exitMs = performance.now() - t0;
      exitCode = status.code;
    }
  }
  await child.status;
  await drain;
  await errText;
  return { initMs, exitMs, exitCode };
}

async function main(): Promise<number> {
  const { reps } = parseArgs(Deno.args);
  const noLinux = linuxKvmAbsent();
  if (noLinux) {
    console.error(`bench/linux needs a KVM that runs Linux to userspace: ${noLinux}`);
    return 1;
  }
  const k = await ensureKernel();
  if ("skip" in k) {
    console.error(`no kernel: ${k.skip}`);
    return 1;
  }
  const kernel = k.kernel.path;
  const initrd = (await buildInitramfs()).path;
  const qemu = which("qemu-system-x86_64");
  if (!qemu) {
    console.error("qemu-system-x86_64 not found (apt-get install qemu-system-x86)");
    return 1;
  }
  const c = await cloader();
  const argv: Record<Vmm, string[]> = {
    vmdesc: [
      Deno.execPath(),
      ...vmdescDenoArgs(),
      `${ROOT}cli/vmdesc.ts`,
      "boot",
      MACHINE,
      "--kernel",
      kernel,
      "--cmdline",
      CMDLINE,
    ],
    qemu: [
      qemu,
      "-M",
      // microvm's defaults otherwise (its RTC included: with or without it, Linux spends
      // ~3.6 s in the bed on "rtc_cmos: broken or not accessible", which vmdesc's FADT
      // avoids by saying there is no CMOS RTC).
      "microvm,x-option-roms=off,isa-serial=on,acpi=on",
      "-enable-kvm",
      "-cpu",
      "host",
      "-smp",
      "1",
      "-m",
      `${MEMORY_MIB}`,
      ...QEMU_BARE,
      "-no-reboot",
      "-kernel",
      kernel,
      "-initrd",
      initrd,
      "-append",
      CMDLINE,
    ],
    c: [c, "--mem", `${MEMORY_MIB}`, "--cmdline", CMDLINE, "--initrd", initrd, kernel],
  };
  console.log(`kernel ${k.kernel.package} ${k.kernel.version}, initrd ${initrd}`);
  console.log(`command line "${CMDLINE}", ${MEMORY_MIB} MiB, 1 vCPU, ${reps} reps interleaved`);

  const samples: Record<Vmm, Sample[]> = { vmdesc: [], qemu: [], c: [] };
  const rnd = prng(12);
  // One warm-up run each (page cache, Deno's code cache), not counted.
  for (const vmm of VMMS) await sample(argv[vmm], vmm === "c");
  for (let rep = 0; rep < reps; rep++) {
    const order = [...VMMS].sort(() => rnd() - 0.5);
    for (const vmm of order) {
      await new Promise((r) => setTimeout(r, 100));
      const s = await sample(argv[vmm], vmm === "c");
      samples[vmm].push(s);
      console.log(
        `  rep ${rep + 1} ${NAMES[vmm].padEnd(13)} init ${(s.initMs / 1000).toFixed(3)} s${
          s.exitMs !== null ? `, exit ${(s.exitMs / 1000).toFixed(3)} s (status ${s.exitCode})` : ""
        }`,
      );
    }
  }

  const stat = (vmm: Vmm) => {
    const init = samples[vmm].map((s) => s.initMs);
    const exits = samples[vmm].flatMap((s) => (s.exitMs === null ? [] : [s.exitMs]));
    return {
      init_best_ms: round(Math.min(...init), 1),
      init_median_ms: round(median(init), 1),
      exit_median_ms: exits.length ? round(median(exits), 1) : null,
      exit_codes: [...new Set(samples[vmm].map((s) => s.exitCode))],
    };
  };
  const stats = Object.fromEntries(VMMS.map((v) => [v, stat(v)])) as Record<
    Vmm,
    ReturnType<typeof stat>
  >;
  const ratio = (a: Vmm, b: Vmm) => ({
    best: round(stats[a].init_best_ms / stats[b].init_best_ms),
    median: round(stats[a].init_median_ms / stats[b].init_median_ms),
  });
  const doc = {
    date: new Date().toISOString(),
    command: `deno task bench linux -- --reps ${reps}`,
    host: hostDescription(),
    kernel: `${k.kernel.package} ${k.kernel.version}`,
    cmdline: CMDLINE,
    memory_mib: MEMORY_MIB,
    vcpus: 1,
    reps,
    argv: Object.fromEntries(
      VMMS.map((v) => [v, argv[v].map((a) => a.replace(ROOT, "")).join(" ")]),
    ),
    time_to_init_ms: stats,
    ratio_vmdesc_over_qemu: ratio("vmdesc", "qemu"),
    ratio_vmdesc_over_c: ratio("vmdesc", "c"),
    samples_ms: Object.fromEntries(
      VMMS.map((v) => [v, samples[v].map((s) => round(s.initMs, 1))]),
    ),
  };
  console.log("\ntime from process start to init's first line:");
  for (const v of VMMS) {
    console.log(
      `  ${NAMES[v].padEnd(13)} best ${stats[v].init_best_ms.toFixed(0)} ms, median ${
        stats[v].init_median_ms.toFixed(0)
      } ms`,
    );
  }
  console.log(
    `  vmdesc / QEMU microvm: ${doc.ratio_vmdesc_over_qemu.best} (best), ${doc.ratio_vmdesc_over_qemu.median} (median)`,
  );
  console.log(
    `  vmdesc / C loader:     ${doc.ratio_vmdesc_over_c.best} (best), ${doc.ratio_vmdesc_over_c.median} (median)`,
  );
  await Deno.mkdir(RESULTS, { recursive: true });
  await Deno.writeTextFile(`${RESULTS}linux.json`, JSON.stringify(doc, null, 2) + "\n");
  await Deno.writeTextFile(`${RESULTS}linux.svg`, chart(stats, doc.host));
  return 0;
}

/** Where the numbers come from: the CPU model and whether this is itself a VM. */
function hostDescription(): string {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  const nested = /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo);
  return `${model}${nested ? " (itself a guest)" : ""}, ${navigator.hardwareConcurrency} CPUs`;
}

function chart(stats: Record<Vmm, { init_best_ms: number; init_median_ms: number }>, host: string) {
  const max = Math.max(...VMMS.map((v) => stats[v].init_median_ms));
  const colors: Record<Vmm, string> = { vmdesc: "#2b6cb0", qemu: "#c05621", c: "#718096" };
  const rows = VMMS.map((v, i) => {
    const y = 50 + i * 44;
    const w = (x: number) => (x / max) * 420;
    return `<text x="10" y="${y + 14}">${NAMES[v]}</text>
<rect x="130" y="${y}" width="${w(stats[v].init_median_ms)}" height="18" fill="${colors[v]}"/>
<rect x="130" y="${y + 20}" width="${w(stats[v].init_best_ms)}" height="8" fill="${
      colors[v]
    }" opacity="0.5"/>
<text x="${140 + w(stats[v].init_median_ms)}" y="${y + 14}">${
      (stats[v].init_median_ms / 1000).toFixed(2)
    } s median, ${(stats[v].init_best_ms / 1000).toFixed(2)} s best</text>`;
  }).join("\n");
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="820" height="${
    70 + VMMS.length * 44
  }" font-family="sans-serif" font-size="13">
<text x="10" y="20">Process start to init's first line, Linux 6.1 + busybox initramfs, 1 vCPU (lower is better)</text>
<text x="10" y="38" font-size="11" fill="#555">${esc(host)}</text>
${rows}
</svg>
`;
}

if (import.meta.main) Deno.exit(await main());
