/**
 * Virtio block benchmark: the virtio-blk guest (examples/guests/virtio_blk.c, mode=bench)
 * doing N sequential 4 KiB reads, on vmdesc and on QEMU microvm with KVM: the same ELF, the
 * same image (examples/guests/build/disk.img, in the page cache), the same 128 MiB, 1 vCPU.
 *
 *   deno task bench virtio [-- --runs R --n N --no-qemu]
 *
 * Per configuration (PCI + MSI-X, PCI + polling, virtio-mmio + its IOAPIC line), runs are
 * interleaved between the VMMs in a shuffled order. What is reported, per request:
 * - time: (t_N − t_0)/N from the guest's TSC (the host's rate, measured by tsc.c), best
 *   and median over runs, and requests/s from the median;
 * - host CPU time and exits to the VMM (the userspace exits: vmdesc's own counters from
 *   --stats-json; QEMU's from its kvm_run_exit trace event, in separate untimed runs): the
 *   difference between a run of N and one of N/4 requests, divided by the difference, so
 *   start-up and boot cancel out. The guest holds in `cli; hlt` after its last read so the
 *   CPU time is read while the VMM still runs. Exits KVM handles in the kernel (QEMU's
 *   ioeventfd notifies, HLT) cannot be counted here: this host's KVM (kvm_pvm) offers no
 *   binary stats and keeps its per-VM debugfs counters locked.
 * Also bench/virtio/notify.ts, the measurement behind serving notifications in the exit.
 * Writes bench/results/virtio.json.
 */
import { buildGuests, ensureDiskImage, guestPath } from "../../examples/guests/build.ts";
import { vmdescArgv } from "../vmdesc_command.ts";
import { prng } from "../../tests/fuzz/mutate.ts";
import { runMode as notifyRound } from "./notify.ts";
import { notifyGuest } from "./notify.ts";
import { writeTemp } from "../../tests/runtime/plans.ts";
import { median, round } from "../stats.ts";
import { which } from "../../tests/skip.ts";
import { QEMU_BARE, QEMU_KVM_HOST } from "../../tests/qemu.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const MACHINES = ROOT + "examples/guests/virtio.vmdesc";

const args = Deno.args;
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const RUNS = opt("runs", 7);
const N = opt("n", 20000);
const N_SMALL = Math.floor(N / 4);
const WITH_QEMU = !args.includes("--no-qemu");

type Vmm = "vmdesc" | "qemu";
interface Config {
  name: string;
  irq: string;
  vmdescMachine: string;
  qemu: { pcie: boolean; device: string };
}

const CONFIGS: Config[] = [
  {
    name: "pci-msix",
    irq: "msix",
    vmdescMachine: "virtio_pci",
    qemu: { pcie: true, device: "virtio-blk-pci,disable-legacy=on,drive=d0" },
  },
  {
    name: "pci-poll",
    irq: "poll",
    vmdescMachine: "virtio_pci",
    qemu: { pcie: true, device: "virtio-blk-pci,disable-legacy=on,drive=d0" },
  },
  {
    name: "mmio-line",
    irq: "intx",
    vmdescMachine: "virtio_mmio",
    qemu: { pcie: false, device: "virtio-blk-device,drive=d0" },
  },
];

/** Another process's /proc or debugfs file, through cat(1) (the task has no --allow-all). */
async function readOther(path: string): Promise<string | null> {
  const r = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
    .output();
  return r.success ? new TextDecoder().decode(r.stdout) : null;
}

/** utime + stime of process `pid`, in ms (all its threads). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readOther(`/proc/${pid}/stat`);
  const f = stat!.split(") ")[1].split(" ");
  const hz = 100;
  return (Number(f[11]) + Number(f[12])) * (1000 / hz);
}

interface Sample {
  /** Guest TSC cycles for the n reads. */
  cycles: number;
  cpuMs: number;
  /** Exits to the VMM (vmdesc: its counters; QEMU: only in counting runs). */
  vmmExits: number | null;
  irqs: number;
}

interface Tools {
  deno: string;
  qemu: string | null;
  tmp: string;
  image: string;
}

function argv(t: Tools, vmm: Vmm, c: Config, n: number, stats: string, trace?: string): string[] {
  const cmdline = `mode=bench n=${n} irq=${c.irq} hold=1`;
  const elf = guestPath("virtio-blk");
  if (vmm === "vmdesc") {
    return vmdescArgv(t.deno, [
      "boot",
      MACHINES,
      "--machine",
      c.vmdescMachine,
      "--kernel",
      elf,
      "--cmdline",
      cmdline,
      "--stats-json",
      stats,
    ]);
  }
  return [
    t.qemu!,
    "-M",
    `microvm,pcie=${
      c.qemu.pcie ? "on" : "off"
    },rtc=off,isa-serial=on,ioapic2=off,x-option-roms=off`,
    ...QEMU_KVM_HOST,
    "-m",
    "128",
    ...QEMU_BARE,
    "-global",
    "virtio-mmio.force-legacy=false",
    "-drive",
    `if=none,id=d0,file=${t.image},format=raw`,
    "-device",
    c.qemu.device,
    "-kernel",
    elf,
    "-append",
    cmdline,
    ...(trace ? ["-trace", "kvm_run_exit", "-D", trace] : []),
  ];
}

const RESULT = /bench: reads (\d+) cycles ([0-9a-f]{16}) irqs (\d+)/;

async function runOnce(t: Tools, vmm: Vmm, c: Config, n: number, count = false): Promise<Sample> {
  const stats = `${t.tmp}/stats-${crypto.randomUUID()}.json`;
  const trace = count && vmm === "qemu" ? `${t.tmp}/trace-${crypto.randomUUID()}.log` : undefined;
  const a = argv(t, vmm, c, n, stats, trace);
  const child = new Deno.Command(a[0], {
    args: a.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  try {
    let m: RegExpExecArray | null = null;
    while (!(m = RESULT.exec(text))) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${vmm} ${c.name}: ended before its result:\n${text}`);
      text += dec.decode(value, { stream: true });
    }
    // The guest now holds in `cli; hlt`: read the CPU time while the VM exists.
    const cpu = await cpuMs(child.pid);
    child.kill("SIGTERM");
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.status;
    let vmmExits: number | null = null;
    if (vmm === "vmdesc") {
      // Exits the guest caused (the kicks of vmdesc's own timer are not the guest's).
      const s = JSON.parse(await Deno.readTextFile(stats));
      vmmExits = s.exits_total - (s.exits?.intr ?? 0);
      await Deno.remove(stats);
    } else if (trace) {
      const lines = (await Deno.readTextFile(trace)).split("\n").filter((l) =>
        l.includes("kvm_run_exit")
      );
      // 10 = KVM_EXIT_INTR: QEMU's own kicks, as for vmdesc.
      vmmExits = lines.filter((l) => !/reason 10\b/.test(l)).length;
      await Deno.remove(trace);
    }
    return {
      cycles: parseInt(m[2], 16),
      cpuMs: cpu,
      vmmExits,
      irqs: Number(m[3]),
    };
  } finally {
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}

async function tscKhz(tmp: string): Promise<number> {
  const bin = `${tmp}/tsc`;
  const r = await new Deno.Command("gcc", {
    args: ["-O2", "-o", bin, ROOT + "bench/virtio/tsc.c"],
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  const khz: number[] = [];
  for (let i = 0; i < 3; i++) {
    const o = await new Deno.Command(bin, { stdout: "piped" }).output();
    khz.push(Number(new TextDecoder().decode(o.stdout).trim()));
  }
  return median(khz);
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function notifyProbe(): Promise<Record<string, unknown>> {
  const n = 20000;
  const path = await writeTemp(notifyGuest(n));
  const warm = await writeTemp(notifyGuest(1000));
  const modes = ["exit", "ioeventfd+thread", "ioeventfd+pool"] as const;
  const us = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  try {
    for (const m of modes) await notifyRound(m, warm, 1000);
    for (let r = 0; r < 5; r++) {
      for (const m of modes) {
        const x = await notifyRound(m, path, n);
        us.set(m, [...(us.get(m) ?? []), x.us]);
        cpu.set(m, [...(cpu.get(m) ?? []), x.cpuUs]);
      }
    }
  } finally {
    await Deno.remove(path);
    await Deno.remove(warm);
  }
  const out: Record<string, unknown> = {};
  for (const m of modes) {
    out[m] = {
      us_best: round(Math.min(...us.get(m)!)),
      us_median: round(median(us.get(m)!)),
      cpu_us_median: round(median(cpu.get(m)!)),
    };
  }
  return out;
}

async function main() {
  await buildGuests(["virtio-blk"]);
  const tmp = await Deno.makeTempDir({ prefix: "vmdesc-bench-virtio-" });
  try {
    const qemu = WITH_QEMU ? which("qemu-system-x86_64") : null;
    if (WITH_QEMU && !qemu) console.log("qemu-system-x86_64 not found: QEMU columns left out");
    const t: Tools = { deno: Deno.execPath(), qemu, tmp, image: await ensureDiskImage() };
    const khz = await tscKhz(tmp);
    const vmms: Vmm[] = qemu ? ["vmdesc", "qemu"] : ["vmdesc"];
    const random = prng(20251205);
    type Key = `${Vmm}/${string}/${number}`;
    const samples = new Map<Key, Sample[]>();
    // Warm up every (VMM, configuration) once: page cache, code caches.
    for (const c of CONFIGS) for (const v of vmms) await runOnce(t, v, c, N_SMALL);
    // QEMU's exits to the VMM, counted by its trace in runs that are not timed.
    const qemuExits = new Map<string, number>();
    if (qemu) {
      for (const c of CONFIGS) {
        const a = await runOnce(t, "qemu", c, N, true);
        const b = await runOnce(t, "qemu", c, N_SMALL, true);
        qemuExits.set(c.name, (a.vmmExits! - b.vmmExits!) / (N - N_SMALL));
      }
    }
    for (let r = 0; r < RUNS; r++) {
      const jobs = CONFIGS.flatMap((c) =>
        vmms.flatMap((v) => [N, N_SMALL].map((n) => ({ c, v, n })))
      );
      for (const { c, v, n } of shuffle(jobs, random)) {
        const s = await runOnce(t, v, c, n);
        const k: Key = `${v}/${c.name}/${n}`;
        samples.set(k, [...(samples.get(k) ?? []), s]);
      }
      console.log(`round ${r + 1}/${RUNS} done`);
    }
    const results: Record<string, Record<string, unknown>> = {};
    const table: string[] = [];
    for (const c of CONFIGS) {
      results[c.name] = {};
      for (const v of vmms) {
        const big = samples.get(`${v}/${c.name}/${N}`)!;
        const small = samples.get(`${v}/${c.name}/${N_SMALL}`)!;
        const usPer = big.map((s) => (s.cycles / khz) * 1000 / N);
        const dn = N - N_SMALL;
        const per = (f: (s: Sample) => number | null) => {
          const a = big.map(f), b = small.map(f);
          if (a.some((x) => x === null) || b.some((x) => x === null)) return null;
          return (median(a as number[]) - median(b as number[])) / dn;
        };
        const row = {
          us_per_request_best: round(Math.min(...usPer)),
          us_per_request_median: round(median(usPer)),
          requests_per_s: Math.round(1e6 / median(usPer)),
          host_cpu_us_per_request: round((per((s) => s.cpuMs) ?? NaN) * 1000),
          exits_to_vmm_per_request: v === "vmdesc"
            ? round(per((s) => s.vmmExits)!)
            : round(qemuExits.get(c.name) ?? NaN),
          interrupts_per_request: round(median(big.map((s) => s.irqs)) / N),
        };
        results[c.name][v] = row;
        table.push(
          `${c.name.padEnd(10)} ${v.padEnd(7)} best ${
            row.us_per_request_best.toFixed(2)
          } µs  median ${
            row.us_per_request_median.toFixed(2)
          } µs  ${row.requests_per_s} req/s  cpu ${row.host_cpu_us_per_request} µs  exits to the VMM ${row.exits_to_vmm_per_request}`,
        );
      }
      if (qemu) {
        const a = results[c.name].vmdesc as {
          us_per_request_median: number;
          us_per_request_best: number;
        };
        const b = results[c.name].qemu as {
          us_per_request_median: number;
          us_per_request_best: number;
        };
        results[c.name].ratio_median = round(a.us_per_request_median / b.us_per_request_median);
        results[c.name].ratio_best = round(a.us_per_request_best / b.us_per_request_best);
        table.push(
          `${c.name.padEnd(10)} vmdesc/QEMU per request: median ${
            results[c.name].ratio_median
          }×, best ${results[c.name].ratio_best}×`,
        );
      }
    }
    console.log(table.join("\n"));
    console.log("notify round trip (bench/virtio/notify.ts) ...");
    const notify = await notifyProbe();
    console.log(JSON.stringify(notify));
    const qemuVersion = qemu
      ? new TextDecoder().decode(
        (await new Deno.Command(qemu, { args: ["--version"], stdout: "piped" }).output()).stdout,
      ).split("\n")[0]
      : null;
    const out = {
      benchmark: "virtio",
      date: new Date().toISOString(),
      host: {
        tsc_khz: khz,
        kernel: Deno.osRelease(),
        qemu: qemuVersion,
        note:
          "a shared 2-core host whose /dev/kvm is a software KVM (kvm_pvm, ~0.5 µs per guest instruction): ratios measured side by side mean more than absolute numbers",
      },
      method: {
        requests: N,
        requests_for_differences: N_SMALL,
        runs: RUNS,
        request: "4 KiB sequential reads (IN), one in flight, image in the page cache",
        time: "(t_N - t_0) / N from the guest's TSC",
        cpu_and_exits:
          "(run of N - run of N/4) / (N - N/4), medians; exits to the VMM: vmdesc --stats-json, QEMU -trace kvm_run_exit (untimed runs); in-kernel exits are not countable on kvm_pvm",
      },
      results,
      notify_round_trip_us: notify,
      target: "vmdesc per request <= 1.0x QEMU (aim 0.8x)",
    };
    await Deno.writeTextFile(
      ROOT + "bench/results/virtio.json",
      JSON.stringify(out, null, 2) + "\n",
    );
    console.log("wrote bench/results/virtio.json");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

await main();
