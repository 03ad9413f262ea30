/**
 * Boots the bed: Debian's cloud kernel and the image (./image.ts) under QEMU's emulator
 * (`-accel tcg -cpu max`: no host KVM needed), runs one command inside, streams its output
 * and returns its exit status.
 *
 * The host side of the protocol in ./init.sh: the command and its settings go in through
 * fw_cfg files; ttyS1 carries the command's output to QEMU's stdout, which is streamed to
 * the caller; ttyS2 carries "ready <uptime>" and "exit <status>" into a file in the run's
 * directory; ttyS0 (kernel console, init messages) goes to the run's own console log,
 * shown when the bed fails and left as `.cache/nested/console.log` (the last run's). Everything the run writes on the host is under
 * `.cache/nested/`, and the run directory is removed afterwards.
 */
import { type BedImage, buildImage, CACHE_DIR, type ImageOptions, PROJECT_ROOT } from "./image.ts";
import { whichSync } from "./host_files.ts";

export interface RunOptions extends ImageOptions {
  /** The command (argv, not a shell line: use ["sh", "-c", "..."] for shell syntax). */
  command: string[];
  /** Working directory inside, relative to the project root (default: the root). */
  cwd?: string;
  /** Environment variables for the command (on top of PATH, HOME, DENO_DIR, VMDESC_IN_BED). */
  env?: Record<string, string>;
  /** Load the kvm modules so /dev/kvm exists (default true). */
  kvm?: boolean;
  /** Guest memory in MiB (default 4096) and vCPUs (default 2). */
  memoryMiB?: number;
  cpus?: number;
  /**
   * QEMU's TCG threading: "single" (default; one host thread runs every vCPU of the bed) or
   * "multi" (a thread per vCPU). Each is needed for something, measured here:
   * - single: with multi the bed's kernel hung in ~1 of 3 runs of
   *   tests/runtime/resources_test.ts (200 VMs created and destroyed: both vCPUs with
   *   interrupts off, one at asm_exc_int3, the other in the NMI entry, i.e. inside
   *   text_poke_bp's int3 patching of a static key that KVM flips as VMs come and go);
   *   single-threaded, 6 of 6 runs passed in the same time;
   * - multi: a Linux guest of two vCPUs under vmdesc inside the bed never gets past its
   *   early SMP set-up single-threaded (its boot CPU spins in guest mode for minutes: 2 of 2
   *   runs timed out after 240 s, right after "rcu_task_cpu_ids=2"), and reaches init in
   *   ~5 s multi-threaded, where the Linux-to-userspace tests run (.ci/run).
   */
  tcgThreads?: "single" | "multi";
  /** A bed not up (its init's "ready") after this many seconds is booted again (default 120). */
  bootTimeoutSeconds?: number;
  /** Kill the VM after this many seconds (default: no limit). */
  timeoutSeconds?: number;
  /** Receives the command's output (stdout and stderr, interleaved); default: our stdout. */
  onOutput?: (bytes: Uint8Array) => void;
}

export interface RunResult {
  /** The command's exit status. */
  status: number;
  image: BedImage;
  /** Seconds from starting QEMU until the command started ("ready" on the status port). */
  bootSeconds: number;
  /** Seconds the command ran (wall clock, from "ready" to the VM's exit). */
  commandSeconds: number;
  /** Seconds for the whole call: image, boot, command, power-off. */
  seconds: number;
}

/** The bed itself failed (not the command): no QEMU, a kernel panic, a timeout. */
export class BedError extends Error {
  constructor(message: string, readonly consoleTail = "") {
    super(consoleTail ? `${message}\n--- bed console (last lines) ---\n${consoleTail}` : message);
    this.name = "BedError";
  }
}

/** `'it'\''s'`: one argument for sh, whatever it contains. */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

function commandScript(opts: RunOptions): string {
  const lines: string[] = [];
  if (opts.cwd) lines.push(`cd ${shellQuote(opts.cwd)} || exit 125`);
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad environment name ${k}`);
    lines.push(`export ${k}=${shellQuote(v)}`);
  }
  lines.push(`exec ${opts.command.map(shellQuote).join(" ")}`);
  return lines.join("\n") + "\n";
}

const QEMU = "qemu-system-x86_64";

/**
 * The bed's kernel did not come up (no "ready" from its init) in BOOT_TIMEOUT_S. It boots in
 * ~5-7 s (two beds side by side included); seen once in many runs: a multi-threaded bed whose
 * console stayed empty for minutes. Nothing of the command has run then, so the bed is
 * booted again, once.
 */
export class BedNotReady extends BedError {}
const BOOT_TIMEOUT_S = 120;
const BOOT_ATTEMPTS = 2;

/** Builds (or reuses) the image, boots it, runs the command; resolves to its exit status. */
export async function runInBed(opts: RunOptions): Promise<RunResult> {
  for (let attempt = 1;; attempt++) {
    try {
      return await runOnce(opts);
    } catch (e) {
      if (!(e instanceof BedNotReady) || attempt >= BOOT_ATTEMPTS) throw e;
      opts.log?.(`${e.message.split("\n")[0]}; booting it again`);
    }
  }
}

async function runOnce(opts: RunOptions): Promise<RunResult> {
  if (opts.command.length === 0) throw new Error("runInBed: empty command");
  const t0 = performance.now();
  const qemu = whichSync(QEMU);
  if (qemu === null) {
    throw new BedError(`${QEMU} is not installed (apt-get install qemu-system-x86)`);
  }
  const image = await buildImage(opts);
  const runDir = await (async () => {
    await Deno.mkdir(`${CACHE_DIR}/runs`, { recursive: true });
    return await Deno.makeTempDir({ dir: `${CACHE_DIR}/runs` });
  })();
  // Each run writes its own console (beds may run side by side: .ci/run runs two), and
  // leaves it as `.cache/nested/console.log` when it ends: the last bed's, to read after.
  const consoleLog = `${runDir}/console.log`;
  try {
    const statusFile = `${runDir}/status`;
    await Deno.writeTextFile(`${runDir}/config`, `BED_KVM=${opts.kvm === false ? 0 : 1}\n`);
    await Deno.writeTextFile(`${runDir}/command`, commandScript(opts));
    // fw_cfg takes "," as a separator: a path with one cannot be passed.
    for (const p of [runDir, image.path, image.kernel.path, consoleLog]) {
      if (p.includes(",")) throw new BedError(`the bed cannot use a path with a comma: ${p}`);
    }
    const args = [
      "-nodefaults",
      "-no-user-config",
      "-machine",
      "pc",
      // See RunOptions.tcgThreads for why the default is one TCG thread for both vCPUs.
      "-accel",
      `tcg,thread=${opts.tcgThreads ?? "single"}`,
      "-cpu",
      "max",
      "-smp",
      String(opts.cpus ?? 2),
      "-m",
      String(opts.memoryMiB ?? 4096),
      "-display",
      "none",
      "-no-reboot",
      "-kernel",
      image.kernel.path,
      "-initrd",
      image.path,
      "-append",
      "console=ttyS0 quiet panic=-1 tsc=reliable",
      "-serial",
      `file:${consoleLog}`,
      "-serial",
      "stdio",
      "-serial",
      `file:${statusFile}`,
      "-fw_cfg",
      `name=opt/vmdesc/config,file=${runDir}/config`,
      "-fw_cfg",
      `name=opt/vmdesc/command,file=${runDir}/command`,
    ];
    const booted = performance.now();
    const child = new Deno.Command(qemu, {
      args,
      cwd: PROJECT_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let timedOut = false;
    // No "ready" in BOOT_TIMEOUT_S: the bed hung in its boot (see BedNotReady).
    let notReady = false;
    const bootTimeout = opts.bootTimeoutSeconds ?? BOOT_TIMEOUT_S;
    const bootTimer = setTimeout(() => {
      if (readyAt !== null) return;
      notReady = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, bootTimeout * 1000);
    const timer = opts.timeoutSeconds === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, opts.timeoutSeconds * 1000);
    const sink = opts.onOutput ?? ((b: Uint8Array) => {
      let off = 0;
      while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
    });
    // A sink that fails (our stdout closed: `deno task nested -- ... | head`) drops the rest
    // of the output; the command still runs to its end and QEMU is never left behind.
    let sinkError: unknown = null;
    // The host's clock at "ready": the status file is polled until the line is there.
    let readyAt: number | null = null;
    const poll = setInterval(() => {
      if (readyAt !== null) return;
      try {
        if (/^ready /m.test(Deno.readTextFileSync(statusFile))) readyAt = performance.now();
      } catch {
        // not created yet
      }
    }, 50);
    const pump = (async () => {
      for await (const chunk of child.stdout) {
        readyAt ??= performance.now(); // output came before the poll saw "ready"
        if (sinkError !== null) continue;
        try {
          sink(chunk);
        } catch (e) {
          sinkError = e;
        }
      }
    })();
    const stderr = new Response(child.stderr).text();
    const exit = await child.status;
    clearTimeout(timer);
    clearTimeout(bootTimer);
    clearInterval(poll);
    await pump;
    const qemuErr = (await stderr).trim();
    const end = performance.now();
    const lines = await Deno.readTextFile(statusFile).catch(() => "");
    const done = lines.match(/^exit (\d+)$/m);
    const tail = async () =>
      (await Deno.readTextFile(consoleLog).catch(() => "")).trimEnd().split("\n").slice(-25)
        .join("\n");
    if (timedOut) {
      throw new BedError(`the bed timed out after ${opts.timeoutSeconds} s`, await tail());
    }
    if (notReady) {
      throw new BedNotReady(`the bed did not come up in ${bootTimeout} s`, await tail());
    }
    if (!done) {
      throw new BedError(
        `the bed ended without the command's status (QEMU exit ${exit.code}${
          qemuErr ? `: ${qemuErr}` : ""
        })`,
        await tail(),
      );
    }
    if (sinkError !== null && !(sinkError instanceof Deno.errors.BrokenPipe)) throw sinkError;
    const started = readyAt ?? end;
    return {
      status: Number(done[1]),
      image,
      bootSeconds: (started - booted) / 1000,
      commandSeconds: (end - started) / 1000,
      seconds: (end - t0) / 1000,
    };
  } finally {
    await Deno.rename(consoleLog, `${CACHE_DIR}/console.log`).catch(() => {});
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}
