/**
 * `vmdesc boot FILE`: compile a machine and run it on /dev/kvm. Guest serial goes to
 * stdout (or where each console's `output` says), everything vmdesc says to stderr;
 * the exit status is the guest's debug-exit status or one of the runtime's own
 * (runtime/errors.ts).
 */
import {
  err,
  failure,
  printDiagnostics,
  startCommand,
  usageError,
  useColor,
  writeOutput,
} from "./output.ts";
import type { Plan } from "../plan/types.ts";
import type { Diagnostic } from "../lang/diagnostics/types.ts";
import { EXIT_STATUS, EXIT_STATUS_HELP } from "../runtime/errors.ts";

/** The signals run() ends a machine on (Ctrl-C, kill). */
const HELD_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

export const HELP = `Boot a machine on /dev/kvm.

Usage: vmdesc boot [options] FILE
       vmdesc boot [options] --plan PLAN.json

  FILE                   a .vmdesc file

Options:
  --machine NAME         the machine to boot (needed when the file defines several)
  --kernel PATH          boot this payload instead of the one in the file (like
                         QEMU's -kernel; relative to the current directory)
  --cmdline TEXT         the guest command line, replacing the file's
  --hole-strategy S      trap | shadow: how the PCI hole is backed
  --timeout SECONDS      stop the guest after it has run this long (time paused
                         does not count; exit status 6)
  --api-sock PATH        serve the control API (HTTP + JSON) on a Unix socket
                         (mode 0600): pause, resume, stop, stats, events; see
                         'vmdesc ctl'. A bare name goes in $XDG_RUNTIME_DIR/vmdesc/
                         (or /tmp/vmdesc-$UID/), where 'vmdesc ps' finds it
  --stats                print exits by reason and by device, and time in guest vs
                         VMM, to stderr when the guest ends
  --stats-json PATH      write the same statistics as JSON (atomically)
  --plan PLAN.json       boot a Plan JSON directly (as 'vmdesc plan --json' prints;
                         relative paths resolve from its "source" file's directory)
  -h, --help             show this help

Guest serial output goes to stdout, or where a serial device's (or virtio
console's) \`output\` says ("stderr", "null" or a file, relative to the .vmdesc's
directory); stdin goes to the console that says \`input stdin\`, else to the
first serial port (else the first virtio console). Messages from vmdesc go to
stderr. Ctrl-C stops the guest (exit status 130). When stderr is a terminal, a
progress line shows the time since boot and the last serial line until the guest
ends or you type; piped, the output is plain.

Linux: \`boot linux\` takes a bzImage (vmlinuz) and runs its own decompressor;
\`boot pvh\` takes a vmlinux, or a bzImage from which it extracts the vmlinux and
enters its PVH note directly (much faster to the first kernel lines).
Unassigned MMIO reads return all-ones and writes to read-only memory are dropped:
each is reported once per 4 KiB page as a warning, and the guest continues.

${EXIT_STATUS_HELP}
`;

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

/** Renders runtime errors like the compiler's diagnostics: error[E1001]: ... = help: ... */
async function renderError(code: string, message: string, hint: string | null): Promise<void> {
  const diag: Diagnostic = { code, severity: "error", message, span: null, labels: [], hint };
  try {
    const { renderDiagnostics } = await import("../lang/diagnostics/render.ts");
    err(renderDiagnostics([diag], () => undefined, { color: useColor(Deno.stderr) }) + "\n");
  } catch {
    err(`error[${code}]: ${message}\n${hint ? `  = help: ${hint}\n` : ""}`);
  }
}

export async function run(args: string[]): Promise<number> {
  const parsed = startCommand("boot", args, {
    machine: { type: "string", short: "m" },
    kernel: { type: "string" },
    cmdline: { type: "string" },
    "hole-strategy": { type: "string" },
    timeout: { type: "string" },
    stats: { type: "boolean" },
    "stats-json": { type: "string" },
    plan: { type: "string" },
    "api-sock": { type: "string" },
  }, HELP);
  if (typeof parsed === "number") return parsed;
  const f = parsed.flags;
  const planFile = f.plan as string | undefined;
  if (planFile === undefined && parsed.positionals.length !== 1) {
    return usageError(
      {
        message: parsed.positionals.length ? "boot takes one file" : "no input file",
        hint: "vmdesc boot FILE [--machine NAME]",
      },
      "boot",
    );
  }
  if (planFile !== undefined && parsed.positionals.length > 0) {
    return usageError({ message: "give either FILE or --plan, not both", hint: null }, "boot");
  }
  const strategy = f["hole-strategy"] as string | undefined;
  if (strategy !== undefined && strategy !== "trap" && strategy !== "shadow") {
    return usageError({
      message: `--hole-strategy must be trap or shadow, not '${strategy}'`,
      hint: null,
    }, "boot");
  }
  let timeout: number | undefined;
  if (f.timeout !== undefined) {
    timeout = Number(f.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0) {
      return usageError({
        message: `--timeout needs a positive number of seconds, not '${f.timeout}'`,
        hint: null,
      }, "boot");
    }
  }

  const positionals = parsed.positionals;
  // The runtime starts loading now: its files are read and prepared while this thread
  // compiles the machine (every boot needs them; a failed compile just leaves them unused).
  const runtimeModule = import("../runtime/mod.ts");
  runtimeModule.catch(() => {}); // awaited below; a compile error returns first
  // ── the Plan ───────────────────────────────────────────────────────────────────────
  let plan: Plan;
  let baseDir: string;
  if (planFile !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(planFile);
    } catch (e) {
      const [{ reportUnreadable }, { describeFsError }] = await Promise.all([
        import("./input.ts"),
        import("../host/fs_errors.ts"),
      ]);
      reportUnreadable(planFile, describeFsError(e));
      return EXIT_STATUS.usage; // as check and plan report an unreadable input
    }
    try {
      plan = JSON.parse(text);
    } catch (e) {
      await renderError(
        "E1006",
        `${planFile} is not JSON: ${(e as Error).message}`,
        "write it with 'vmdesc plan --json'",
      );
      return EXIT_STATUS.hostError;
    }
    // The runtime checks it against the schema (naming the file); relative paths in the
    // Plan resolve from its source's directory, as they did when 'vmdesc plan --json'
    // wrote it (and as the library does); a hand-written Plan without a source resolves
    // from its own directory.
    const { source, boot } = (plan ?? {}) as { source?: unknown; boot?: unknown };
    baseDir = typeof source === "string" && source ? dirname(source) : dirname(planFile);
    if (boot !== null && typeof boot === "object") {
      if (f.kernel) plan.boot.path = absolute(f.kernel as string);
      if (f.cmdline !== undefined) plan.boot.cmdline = f.cmdline as string;
    }
  } else {
    const file = positionals[0];
    const [{ compile }, { withOhmOnDemand }, { DenoHost }, { readInput, reportUnreadable }] =
      await Promise.all([
        import("../lang/compile.ts"),
        import("../lang/ohm_on_demand.ts"),
        import("./host.ts"),
        import("./input.ts"),
      ]);
    const host = new DenoHost();
    const input = await readInput(file, host);
    if ("error" in input) {
      reportUnreadable(file, input.error);
      return EXIT_STATUS.usage; // as check and plan report an unreadable input
    }
    const text = input.text;
    const machine = f.machine as string | undefined;
    const result = await withOhmOnDemand(() =>
      compile(text, {
        file,
        host,
        machine,
        holeStrategy: strategy as "trap" | "shadow" | undefined,
        kernel: f.kernel ? absolute(f.kernel as string) : undefined,
        cmdline: f.cmdline as string | undefined,
      })
    );
    // W0006 (payload not found) becomes E1010 at boot; other warnings are shown. (The
    // renderer loads only when there is something to render.)
    if (result.diagnostics.length) {
      await printDiagnostics(result.diagnostics, host.source);
      if (result.diagnostics.some((d) => d.severity === "error")) return EXIT_STATUS.compileError;
    }
    const plans: Plan[] = [...result.plans.values()].filter((p) =>
      machine === undefined || p.machine === machine
    );
    if (plans.length === 0) {
      failure(
        machine ? "E0105" : "E0404",
        machine ? `no machine named '${machine}' in ${file}` : `${file} defines no machine`,
        null,
      );
      return EXIT_STATUS.compileError;
    }
    if (plans.length > 1) {
      return usageError(
        {
          message: `${file} defines ${plans.length} machines`,
          hint: `pick one with --machine: ${plans.map((p) => p.machine).join(", ")}`,
        },
        "boot",
      );
    }
    plan = plans[0];
    baseDir = dirname(file);
  }

  // ── boot ───────────────────────────────────────────────────────────────────────────
  const { createMachine, formatStats, RuntimeError } = await runtimeModule;
  // The control socket's path is claimed before anything is built: a live server there
  // (E1030) or a path that cannot be one (E1031) fails fast, leaving nothing behind.
  const apiSock = f["api-sock"] as string | undefined;
  const api = apiSock === undefined ? null : await import("../runtime/api/mod.ts");
  let socket: string | null = null;
  if (api && apiSock !== undefined) {
    try {
      socket = await api.claimSocketPath(api.prepareSocketPath(apiSock));
    } catch (e) {
      if (!(e instanceof RuntimeError)) throw e;
      await renderError(e.code, e.message, e.hint);
      return EXIT_STATUS.hostError;
    }
  }
  // On a terminal, a progress line (elapsed time, last serial line) until the guest ends
  // or the user types; nothing at all when stderr is piped.
  const progress = Deno.stderr.isTerminal()
    ? (await import("./progress.ts")).progressForTerminal()
    : null;
  let machine;
  try {
    machine = await createMachine(plan, {
      fromCompiler: planFile === undefined,
      planName: planFile,
      baseDir,
      serial: "stdio",
      stdin: "stdio",
      // One vCPU runs on this thread: no second isolate to start (runtime/threads/). With
      // the control API it runs in a worker: this thread's event loop serves the API (on
      // the vCPU's thread it would turn only every 100 ms: ARCHITECTURE.md measures both).
      vcpuThread: socket === null ? "caller" : "worker",
      progress: progress ?? undefined,
    });
  } catch (e) {
    if (!(e instanceof RuntimeError)) throw e;
    await renderError(e.code, e.message, e.hint);
    return EXIT_STATUS.hostError;
  }
  let server = null;
  // From the moment the socket exists a client may signal us (scripts wait for the socket,
  // then kill): a signal before run() listens would kill the process with the default
  // action and leave the socket behind. Held here, and sent again once run() listens.
  const held: Deno.Signal[] = [];
  const holders = socket === null ? [] : HELD_SIGNALS.map((s) => [s, () => held.push(s)] as const);
  for (const [s, f] of holders) Deno.addSignalListener(s, f);
  const release = () => {
    for (const [s, f] of holders) Deno.removeSignalListener(s, f);
  };
  if (api && socket !== null) {
    try {
      server = await api.serveApi(machine, { path: socket });
    } catch (e) {
      release();
      machine.close();
      if (!(e instanceof RuntimeError)) throw e;
      await renderError(e.code, e.message, e.hint);
      return EXIT_STATUS.hostError;
    }
  }
  let result;
  try {
    const running = machine.run({ timeout, sigint: true }); // listens before it returns
    release();
    for (const s of held) Deno.kill(Deno.pid, s);
    result = await running;
  } finally {
    release();
    // Answers in flight (a stop's) go out; then the socket is removed.
    await server?.close();
    machine.close();
  }

  if (result.reason === "host_error") {
    await renderError(result.code ?? "E1005", result.message, result.hint ?? null);
  } else if (result.reason !== "debug_exit") {
    err(`vmdesc: ${result.message}\n`);
    if (result.dump) err(result.dump + "\n");
  }
  if (f.stats) err(formatStats(result.stats) + "\n");
  const statsPath = f["stats-json"] as string | undefined;
  if (statsPath) {
    const doc = {
      version: 1,
      machine: plan.machine,
      reason: result.reason,
      exit_status: result.exitStatus,
      message: result.message,
      ...result.stats,
    };
    // Atomic for a regular file; a pipe or device (/dev/stdout) is written through.
    await writeOutput(
      statsPath,
      JSON.stringify(doc, null, 2) + "\n",
      "check the directory exists and is writable",
    );
  }
  return result.exitStatus;
}
