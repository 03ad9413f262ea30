/**
 * `vmdesc ctl SOCK COMMAND`: drives a machine that `vmdesc boot --api-sock` runs, through
 * its control API (runtime/api/). SOCK is the socket's path, or the bare name given to
 * --api-sock. Text for people by default; `--format json` prints the API's own answers
 * (docs/api/openapi.json), one JSON document per line for `events`.
 */
import { suggest } from "./args.ts";
import { err, failure, out, startTextOrJson, usageError } from "./output.ts";
import { type Code, CODES } from "../plan/codes.ts";
import { size as formatSize } from "./plan_table.ts";
import type { ApiResponse } from "../runtime/api/client.ts";
import type { Plan } from "../plan/types.ts";
import type { RunStats } from "../runtime/stats.ts";

export const HELP = `Control a running machine through its API socket.

Usage: vmdesc ctl [options] SOCK COMMAND
       vmdesc ctl SOCK disk ID --file PATH [--readonly]

  SOCK       the socket given to 'vmdesc boot --api-sock': a path, or a bare
             name (looked up in $XDG_RUNTIME_DIR/vmdesc/ or /tmp/vmdesc-$UID/)
  COMMAND    one of:
    info     the machine: state, vCPUs, uptime, exit, allowed actions, Plan
    plan     the full Plan (table; JSON with --format json)
    stats    live stats: exits by reason and by device, per vCPU, device counters
    events   follow state changes, warnings, disk swaps and the exit until it ends
    pause    every vCPU out of KVM_RUN and parked; the guest's clocks held
    resume   back to running
    stop     end the run cleanly (vmdesc boot exits with status 0)
    reset    end the run as the guest's reset line would (only with a reset path)
    disks    the block devices and their images now
    disk ID  one disk (ID: its device name, or its PCI function's BDF); with
             --file, swap its image while the machine is paused: the new image
             is opened and checked before the old one is closed, and the guest
             is told the disk's size changed

Options:
  --file PATH          disk: the image to swap in (relative to this directory)
  --readonly           disk: use the new image read-only (default: the disk's
                       mode now)
  --format text|json   text (default), or the API's JSON answers (events: one
                       JSON object per line)
  -h, --help           show this help

Examples:
  vmdesc boot web.vmdesc --api-sock web1 &
  vmdesc ctl web1 pause
  vmdesc ctl web1 stats --format json | jq .exits_total
  vmdesc ctl web1 pause && vmdesc ctl web1 disk disk0 --file new.img && vmdesc ctl web1 resume
  curl --unix-socket /run/user/$UID/vmdesc/web1.sock http://localhost/v1/machine

Exit status: 0 done, 1 the machine refused (wrong state, no reset path, an
image it cannot use) or the socket cannot be reached, 2 usage error.
`;

/** The commands after SOCK (the completion scripts offer them). */
export const SUBCOMMANDS = [
  "info",
  "plan",
  "stats",
  "events",
  "pause",
  "resume",
  "stop",
  "reset",
  "disks",
  "disk",
] as const;
type CommandName = typeof SUBCOMMANDS[number];

interface MachineInfo {
  name: string;
  state: string;
  pid: number;
  socket: string;
  uptime_ms: number;
  paused_ms: number;
  vcpus: { index: number; state: string }[];
  exit: { reason: string; exit_status: number; message: string } | null;
  actions: string[];
  reset_path: string | null;
  guest_time: { kvmclock_held: boolean; tsc_held: boolean | null } | null;
  plan: {
    cpus: number;
    memory_bytes: number;
    devices: { id: string; kind: string }[];
    pci: { bdf: string; kind: string }[];
    boot: { protocol: string; path: string };
    source: string | null;
  };
}

/** 12345 ms → "12.3 s"; long spans in minutes and hours. */
export function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function infoText(i: MachineInfo): string {
  const p = i.plan;
  const vcpus = i.vcpus.map((v) => `${v.index} ${v.state}`).join(", ");
  const devices = p.devices.map((d) => `${d.id} (${d.kind})`).join(", ") || "none";
  const rows: string[][] = [
    ["machine", `${i.name} (pid ${i.pid})`],
    ["state", i.state],
    ["uptime", `${duration(i.uptime_ms)}, of which paused ${duration(i.paused_ms)}`],
    ["vCPUs", vcpus],
    [
      "Plan",
      `${p.cpus} vCPU${p.cpus === 1 ? "" : "s"}, ${formatSize(p.memory_bytes)} RAM, ` +
      `boot ${p.boot.protocol} ${p.boot.path}`,
    ],
    ["devices", devices],
  ];
  if (p.pci.length > 0) rows.push(["PCI", p.pci.map((f) => `${f.bdf} ${f.kind}`).join(", ")]);
  if (i.exit) rows.push(["exit", `${i.exit.message} (status ${i.exit.exit_status})`]);
  if (i.guest_time) {
    const tsc = i.guest_time.tsc_held === null
      ? "not checked"
      : i.guest_time.tsc_held
      ? "held"
      : "ran on (the host's KVM ignores TSC offsets)";
    rows.push([
      "clocks",
      `kvmclock ${i.guest_time.kvmclock_held ? "held" : "not held"}; TSC ${tsc} while paused`,
    ]);
  }
  rows.push(["actions", i.actions.join(", ") || "none"]);
  rows.push(["socket", i.socket]);
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join("");
}

function eventText(e: Record<string, unknown>): string {
  const t = typeof e.time === "string" ? e.time.slice(11, 23) : "";
  switch (e.type) {
    case "open":
      return `${t} ${e.state}`;
    case "state":
      return `${t} ${e.from} → ${e.to}`;
    case "warning":
      return `${t} warning: ${e.message}`;
    case "disk": {
      const d = e.disk as { id?: string; path?: string; readonly?: boolean };
      return `${t} disk ${d.id} now ${d.path}${d.readonly ? " (read-only)" : ""}`;
    }
    case "exit":
      return `${t} exit: ${e.message} (status ${e.exit_status})`;
    case "dropped":
      return `${t} (${e.count} events missed: this reader fell behind)`;
    default:
      return `${t} ${JSON.stringify(e)}`;
  }
}

/** The API's error answer, as vmdesc prints it; exit status 1. */
function refused(r: ApiResponse): number {
  const e = (r.body as {
    error?: { code?: string; message?: string; diagnostic?: string; hint?: string };
  } | null)?.error;
  if (e?.diagnostic && e.message && isCode(e.diagnostic)) {
    // A coded runtime error (a disk swap's): printed as vmdesc prints its own.
    failure(e.diagnostic, e.message, e.hint ?? null);
    return 1;
  }
  err(
    `vmdesc: ${e?.message ?? `the API answered ${r.status}: ${r.text.trim()}`}` +
      (e?.code ? ` (${e.code})\n` : "\n"),
  );
  return 1;
}

function isCode(s: string): s is Code {
  return Object.hasOwn(CODES, s);
}

/** One disk as `disks` and `disk` print it. */
interface Disk {
  id: string;
  kind: string;
  path: string;
  readonly: boolean;
  size_bytes: number;
}

function diskText(d: Disk): string {
  return `${d.id}  ${d.kind}  ${d.path}  ${formatSize(d.size_bytes)}${
    d.readonly ? "  read-only" : ""
  }\n`;
}

export async function run(args: string[]): Promise<number> {
  const start = startTextOrJson("ctl", args, HELP, {
    file: { type: "string" },
    readonly: { type: "boolean" },
  });
  if (typeof start === "number") return start;
  const { parsed, json } = start;
  const [sock, command, ...rest] = parsed.positionals;
  const diskId = command === "disk" ? rest.shift() : undefined;
  if (command === "disk" && diskId === undefined && rest.length === 0) {
    return usageError({
      message: "no disk given",
      hint:
        "vmdesc ctl SOCK disk ID [--file PATH [--readonly]] ('vmdesc ctl SOCK disks' lists them)",
    }, "ctl");
  }
  const file = parsed.flags.file as string | undefined;
  const readonly = parsed.flags.readonly === true;
  if ((file !== undefined || readonly) && command !== "disk") {
    return usageError({
      message: `${file !== undefined ? "--file" : "--readonly"} goes with 'disk'`,
      hint: "vmdesc ctl SOCK disk ID --file PATH [--readonly]",
    }, "ctl");
  }
  if (readonly && file === undefined) {
    return usageError({
      message: "--readonly needs --file",
      hint: "vmdesc ctl SOCK disk ID --file PATH --readonly",
    }, "ctl");
  }
  if (sock === undefined || command === undefined || rest.length > 0) {
    return usageError({
      message: sock === undefined
        ? "no socket given"
        : command === undefined
        ? "no command given"
        : `unexpected '${rest[0]}'`,
      hint: `vmdesc ctl SOCK ${SUBCOMMANDS.join("|")}`,
    }, "ctl");
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(command)) {
    const best = suggest(command, SUBCOMMANDS);
    return usageError({
      message: `unknown ctl command '${command}'`,
      hint: best ? `did you mean '${best}'?` : `commands: ${SUBCOMMANDS.join(", ")}`,
    }, "ctl");
  }
  const api = await import("../runtime/api/mod.ts");
  const socket = api.socketPath(sock);
  try {
    if (command === "disk") {
      return await diskCommand(api, socket, diskId!, file, readonly, json);
    }
    return await runCommand(api, socket, command as CommandName, json);
  } catch (e) {
    if (!(e instanceof api.ApiUnreachable)) throw e;
    failure(
      "E2004",
      `cannot reach the machine at ${socket}: ${e.reason}`,
      "is it running? 'vmdesc ps' lists the machines in the runtime directory",
    );
    return 1;
  }
}

/** `disk ID`: shows the disk; with `file`, swaps its image (the machine paused). */
async function diskCommand(
  api: typeof import("../runtime/api/mod.ts"),
  socket: string,
  id: string,
  file: string | undefined,
  readonly: boolean,
  json: boolean,
): Promise<number> {
  const at = `/v1/disks/${encodeURIComponent(id)}`;
  const r = file === undefined
    ? await api.apiRequest(socket, "GET", at)
    : await api.apiRequest(socket, "PUT", at, {
      // The server may run elsewhere: the path goes absolute, from where ctl was run.
      path: file.startsWith("/") ? file : `${Deno.cwd().replace(/\/+$/, "")}/${file}`,
      ...(readonly ? { readonly: true } : {}),
    });
  if (r.status !== 200) return refused(r);
  if (json) out(JSON.stringify(r.body, null, 2) + "\n");
  else out(diskText(r.body as Disk));
  return 0;
}

async function runCommand(
  api: typeof import("../runtime/api/mod.ts"),
  socket: string,
  command: CommandName,
  json: boolean,
): Promise<number> {
  const show = (value: unknown) => out(JSON.stringify(value, null, 2) + "\n");
  if (command === "events") {
    for await (const e of api.apiEvents(socket)) {
      out((json ? JSON.stringify(e) : eventText(e)) + "\n");
    }
    return 0;
  }
  if (command === "pause" || command === "resume" || command === "stop" || command === "reset") {
    // A stop waits for the machine to end, which a guest's models may take a moment for.
    const r = await api.apiRequest(socket, "POST", "/v1/actions", { action: command });
    if (r.status !== 200) return refused(r);
    const a = r.body as { state: string; exit?: { message: string; exit_status: number } | null };
    if (json) show(r.body);
    else if (a.exit) out(`${a.state}: ${a.exit.message} (status ${a.exit.exit_status})\n`);
    else out(`${a.state}\n`);
    return 0;
  }
  if (command === "disks") {
    const r = await api.apiRequest(socket, "GET", "/v1/disks");
    if (r.status !== 200) return refused(r);
    const disks = (r.body as { disks: Disk[] }).disks;
    if (json) show(r.body);
    else out(disks.length ? disks.map(diskText).join("") : "no disks\n");
    return 0;
  }
  const path = command === "info"
    ? "/v1/machine"
    : command === "plan"
    ? "/v1/machine/plan"
    : "/v1/machine/stats";
  const r = await api.apiRequest(socket, "GET", path);
  if (r.status !== 200) return refused(r);
  if (json) show(r.body);
  else if (command === "info") out(infoText(r.body as MachineInfo));
  else if (command === "plan") out((await import("./plan_table.ts")).planTable(r.body as Plan));
  else {
    const { formatStats } = await import("../runtime/stats.ts");
    const s = r.body as RunStats & { state: string };
    out(`state ${s.state}\n${formatStats(s)}\n`);
  }
  return 0;
}
