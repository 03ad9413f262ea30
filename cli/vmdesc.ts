/**
 * `vmdesc <command> [args]`: the dispatcher. Commands live in `cli/<command>.ts` and are
 * imported only when run, so `vmdesc --version` never loads the grammar or the runtime.
 *
 * Exit statuses: 0 ok, 1 problems found (errors in a file, a failed boot), 2 usage error.
 */
import denoJson from "../deno.json" with { type: "json" };
import { suggest } from "./args.ts";
import { out, refuseColor, usageError } from "./output.ts";
import { enterInvocationDirectory } from "./input.ts";

interface Command {
  summary: string;
  load: () => Promise<{ HELP: string; run(args: string[]): Promise<number> }>;
}

export const COMMANDS: Record<string, Command> = {
  check: {
    summary: "parse and check files; report coded diagnostics",
    load: () => import("./check.ts"),
  },
  plan: {
    summary: "show the Plan a machine lowers to (table, JSON or SVG map)",
    load: () => import("./plan.ts"),
  },
  fmt: { summary: "format files in the canonical layout", load: () => import("./fmt.ts") },
  explain: { summary: "explain a diagnostic code", load: () => import("./explain.ts") },
  boot: { summary: "boot a machine on /dev/kvm", load: () => import("./boot.ts") },
  doctor: {
    summary: "check that this host can boot machines (KVM, limits), and why not",
    load: () => import("./doctor.ts"),
  },
  ctl: {
    summary: "control a running machine (pause, resume, stop, stats, events)",
    load: () => import("./ctl.ts"),
  },
  ps: { summary: "list the machines running under this user", load: () => import("./ps.ts") },
  lsp: { summary: "run the language server on stdio", load: () => import("./lsp.ts") },
  completions: {
    summary: "print a shell completion script (bash, zsh, fish)",
    load: () => import("./completions.ts"),
  },
};

export const VERSION: string = denoJson.version;

export const HELP = `vmdesc ${VERSION}: describe virtual machines, check them, boot them on KVM

Usage: vmdesc <command> [args]

Commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(12)}${c.summary}`).join("\n")}

Options:
  -h, --help     show this help (also: vmdesc <command> --help)
  -V, --version  print the version
  --no-color     never color the output (also: NO_COLOR=1); any command takes it

Exit status: 0 ok, 1 problems found, 2 usage error.
See 'vmdesc explain CODE' for any diagnostic code (E0201, W0002, ...).
`;

export async function main(argv: string[]): Promise<number> {
  const args = withoutNoColor(argv);
  const [first, ...rest] = args;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    if (first === "help" && rest[0] && Object.hasOwn(COMMANDS, rest[0])) {
      out((await COMMANDS[rest[0]].load()).HELP);
      return 0;
    }
    out(HELP);
    return first === undefined ? 2 : 0;
  }
  if (first === "--version" || first === "-V") {
    out(`vmdesc ${VERSION}\n`);
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    const names = Object.keys(COMMANDS);
    if (first.startsWith("-")) {
      const best = suggest(first.replace(/^-+/, ""), ["help", "version"]);
      return usageError({
        message: `unknown option '${first}'`,
        hint: best
          ? `did you mean '--${best}'?`
          : `options come after a command: ${names.join(", ")}`,
      });
    }
    const best = suggest(first, names);
    return usageError({
      message: `unknown command '${first}'`,
      hint: best ? `did you mean '${best}'?` : `commands: ${names.join(", ")}`,
    });
  }
  let mod;
  try {
    mod = await COMMANDS[first].load();
  } catch (e) {
    // Only a missing command module is expected here (a build without boot or lsp).
    if (e instanceof TypeError && /Module not found/i.test(e.message)) {
      return usageError({
        message: `command '${first}' is not available in this build`,
        hint: null,
      });
    }
    throw e;
  }
  return await mod.run(rest);
}

/** Takes `--no-color` out of a command line (before any `--`), for every command at once. */
function withoutNoColor(args: string[]): string[] {
  const end = args.indexOf("--");
  const flags = end < 0 ? args : args.slice(0, end);
  if (!flags.includes("--no-color")) return args;
  refuseColor();
  return [...flags.filter((a) => a !== "--no-color"), ...(end < 0 ? [] : args.slice(end))];
}

if (import.meta.main) {
  enterInvocationDirectory();
  const status = await main(Deno.args);
  // `boot` returns with the machine closed, its workers terminated and all of its output
  // written synchronously: exit now instead of letting the runtime wind down the isolates
  // (10-25 ms of a ~250 ms boot, measured). Other commands (the LSP's async streams) drain.
  if (Deno.args[0] === "boot") Deno.exit(status);
  Deno.exitCode = status;
}
