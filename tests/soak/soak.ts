/**
 * The soak: many boots of a small guest (examples/guests/hello.vmdesc: prints a line,
 * debug-exit 42 → status 85), one after another, in one process through the library API
 * (createMachine → run → close) and as separate `vmdesc boot` processes through the CLI,
 * with what each boot left behind and how long it took; and the in-flight test, a machine
 * closed by the host while its guest writes to a disk in a loop.
 */
import process from "node:process";
import { compile, type Plan } from "../../lang/mod.ts";
import { DenoHost } from "../../host/disk_host.ts";
import { createMachine } from "../../runtime/mod.ts";
import { buildGuests, diskImageBytes } from "../../examples/guests/build.ts";
import { vmdescArgv } from "../../bench/vmdesc_command.ts";
import { leaks, type Resources, resources, workersGone } from "../fuzz_guest/resources.ts";

const GUESTS = decodeURIComponent(new URL("../../examples/guests/", import.meta.url).pathname);
const HELLO = GUESTS + "hello.vmdesc";
const HELLO_STATUS = 85;

function compileMachine(file: string, machine?: string): Plan {
  const host = new DenoHost();
  const r = compile(host.readFile(file)!, { file, host, ...(machine ? { machine } : {}) });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => `${d.code} ${d.message}`).join("; "));
  return machine ? r.plans.get(machine)! : [...r.plans.values()][0];
}

export interface Boot {
  /** Wall time of the boot (createMachine → run → close, or the CLI process). */
  ms: number;
  /**
   * Library boots: the CPU time this process (every thread) spent on the boot, which
   * other load on a shared host disturbs far less than the wall time. 0 for CLI boots.
   */
  cpuMs: number;
  res: Resources;
}

export interface SoakResult {
  boots: Boot[];
  baseline: Resources;
  /** Boots that did not end as hello does, or left something behind (exact counts). */
  problems: string[];
}

/** `n` library boots of hello; the baseline is taken after two warm-up boots. */
export async function libraryBoots(
  n: number,
  onBoot?: (b: Boot, i: number) => void,
): Promise<SoakResult> {
  await buildGuests(["hello"]);
  const plan = compileMachine(HELLO);
  const dec = new TextDecoder();
  const once = async (): Promise<string | null> => {
    let out = "";
    const m = await createMachine(structuredClone(plan), {
      serial: (b) => out += dec.decode(b, { stream: true }),
      warn: () => {},
      fromCompiler: true,
    });
    try {
      const r = await m.run({ timeout: 30 });
      if (r.exitStatus !== HELLO_STATUS || !out.includes("Hello from vmdesc guest")) {
        return `status ${r.exitStatus} (${r.message}), output ${JSON.stringify(out)}`;
      }
      return null;
    } finally {
      m.close();
    }
  };
  await once();
  await once();
  await workersGone();
  const baseline = resources();
  const boots: Boot[] = [];
  const problems: string[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const bad = await once();
    const c1 = process.cpuUsage(c0);
    const ms = performance.now() - t0;
    const res = resources();
    if (bad) problems.push(`boot ${i}: ${bad}`);
    const lost = leaks(baseline, res);
    if (lost.length) problems.push(`boot ${i}: not back to baseline: ${lost.join(", ")}`);
    const b = { ms, cpuMs: (c1.user + c1.system) / 1000, res };
    boots.push(b);
    onBoot?.(b, i);
  }
  return { boots, baseline, problems };
}

/** The peak RSS (VmHWM, KiB) of process `pid` as last seen, or 0 once it is gone. */
function peakRss(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * `n` boots of hello through the CLI (`vmdesc boot`, started as `deno task vmdesc` starts
 * it). Each boot's resources are the child's own where that means anything: its peak RSS
 * (VmHWM, read every few ms while it runs: the last value seen before it exits) in
 * `rssKiB`; the fds and threads are this process's, which must not pile up either.
 */
export async function cliBoots(
  n: number,
  onBoot?: (b: Boot, i: number) => void,
): Promise<SoakResult> {
  await buildGuests(["hello"]);
  const argv = vmdescArgv(Deno.execPath(), ["boot", HELLO]);
  const once = async (): Promise<{ bad: string | null; rss: number }> => {
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let rss = 0;
    let done = false;
    const output = child.output().finally(() => done = true);
    while (!done) {
      rss = Math.max(rss, peakRss(child.pid));
      await new Promise((r) => setTimeout(r, 5));
    }
    const out = await output;
    const text = new TextDecoder().decode(out.stdout);
    if (out.code !== HELLO_STATUS || !text.includes("Hello from vmdesc guest")) {
      return { bad: `status ${out.code}: ${text}${new TextDecoder().decode(out.stderr)}`, rss };
    }
    return { bad: null, rss };
  };
  await once();
  const baseline = resources();
  const boots: Boot[] = [];
  const problems: string[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const { bad, rss } = await once();
    const ms = performance.now() - t0;
    const res = { ...resources(), rssKiB: rss };
    if (bad) problems.push(`CLI boot ${i}: ${bad}`);
    if (res.fds !== baseline.fds) {
      problems.push(`CLI boot ${i}: this process's fds ${baseline.fds} → ${res.fds}`);
    }
    const b = { ms, cpuMs: 0, res };
    boots.push(b);
    onBoot?.(b, i);
  }
  return { boots, baseline, problems };
}

export interface BlockSummary {
  boots: number;
  ms: { mean: number; median: number };
  cpuMs: { mean: number; median: number };
  rssKiB: { mean: number; median: number };
  mapsTotal: { mean: number; median: number };
  threads: { mean: number; median: number };
  fds: { min: number; max: number };
}

function stat(xs: number[]): { mean: number; median: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean: Math.round(mean * 10) / 10, median: Math.round(s[s.length >> 1] * 10) / 10 };
}

export function summarize(boots: Boot[]): BlockSummary {
  return {
    boots: boots.length,
    ms: stat(boots.map((b) => b.ms)),
    cpuMs: stat(boots.map((b) => b.cpuMs)),
    rssKiB: stat(boots.map((b) => b.res.rssKiB)),
    mapsTotal: stat(boots.map((b) => b.res.mapsTotal)),
    threads: stat(boots.map((b) => b.res.threads)),
    fds: {
      min: Math.min(...boots.map((b) => b.res.fds)),
      max: Math.max(...boots.map((b) => b.res.fds)),
    },
  };
}

/** The first and the last `block` boots (100, or a tenth of a shorter run). */
export function firstAndLast(boots: Boot[], block?: number): {
  first: BlockSummary;
  last: BlockSummary;
} {
  const k = block ?? Math.min(100, Math.max(1, Math.floor(boots.length / 10)));
  return { first: summarize(boots.slice(0, k)), last: summarize(boots.slice(-k)) };
}

export interface InflightResult {
  /** Writes the guest reported complete before the host closed the machine. */
  reported: number;
  /** Reported writes not found in the image (must be none). */
  lost: string[];
  /** Sectors that changed but hold no write the guest could have made. */
  stray: string[];
  leaks: string[];
  reason: string;
}

/** The content of write `seq` to `sector` (fuzz_writer.c). */
export function writerSector(seq: number, sector: number): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  v.setUint32(0, seq, true);
  v.setUint32(4, sector, true);
  for (let i = 8; i < 512; i++) b[i] = (seq * 7 + i) & 0xff;
  return b;
}

/**
 * What blk-writer's output promises about the image: the last write it reported for each
 * sector is there (or a later write to it, finished but not yet reported when the machine
 * closed), and every changed sector holds a write it could have made (sector 0 never).
 */
export function checkWriterImage(
  output: string,
  now: Uint8Array,
  original: Uint8Array,
): { reported: number; lost: string[]; stray: string[] } {
  const latest = new Map<number, number>();
  let reported = 0;
  // Only whole lines: a report cut off by the close is not a report.
  for (const m of output.slice(0, output.lastIndexOf("\n") + 1).matchAll(/^w (\d+) (\d+)$/gm)) {
    latest.set(Number(m[1]), Number(m[2]));
    reported++;
  }
  const seqOf = (s: Uint8Array) => new DataView(s.buffer, s.byteOffset).getUint32(0, true);
  const lost: string[] = [];
  for (const [sector, seq] of latest) {
    const got = now.subarray(sector * 512, sector * 512 + 512);
    const want = writerSector(seqOf(got), sector);
    if (seqOf(got) < seq || !got.every((x, i) => x === want[i])) {
      lost.push(`sector ${sector}: reported write ${seq}, image holds ${seqOf(got)}`);
    }
  }
  const stray: string[] = [];
  for (let s = 0; s * 512 < now.length; s++) {
    const got = now.subarray(s * 512, s * 512 + 512);
    if (got.every((x, i) => x === original[s * 512 + i])) continue;
    const want = writerSector(seqOf(got), s);
    if (s === 0 || !got.every((x, i) => x === want[i])) stray.push(`sector ${s}`);
  }
  return { reported, lost, stray };
}

/**
 * The blk-writer guest on `machine` of examples/guests/virtio.vmdesc (its disk a fresh
 * copy of the example image), closed by the host once it has reported `after` writes
 * (while it is writing more); then every reported write must be in the image, with
 * nothing left behind.
 */
export async function inflightClose(machine: string, after: number): Promise<InflightResult> {
  await buildGuests(["blk-writer"]);
  const plan = compileMachine(GUESTS + "virtio.vmdesc", machine);
  plan.boot.path = GUESTS + "build/blk-writer.elf";
  const image = Deno.makeTempFileSync({ prefix: "vmdesc-inflight-", suffix: ".img" });
  const original = diskImageBytes();
  Deno.writeFileSync(image, original);
  try {
    for (const e of [...plan.devices, ...plan.pci]) {
      if (e.virtio?.backing.kind === "file") e.virtio.backing.path = image;
    }
    await workersGone();
    const base = resources();
    let out = "";
    const dec = new TextDecoder();
    let lines = 0;
    let reached: () => void;
    const enough = new Promise<void>((r) => reached = r);
    const m = await createMachine(plan, {
      serial: (b) => {
        const s = dec.decode(b, { stream: true });
        out += s;
        for (const c of s) if (c === "\n" && ++lines >= after) reached();
      },
      warn: () => {},
    });
    const run = m.run({ timeout: 120 });
    await Promise.race([enough, run]);
    m.close(); // mid-run: the guest is still writing
    const r = await run;
    const check = checkWriterImage(out, Deno.readFileSync(image), original);
    return { ...check, leaks: leaks(base, resources()), reason: r.reason };
  } finally {
    Deno.removeSync(image);
  }
}
