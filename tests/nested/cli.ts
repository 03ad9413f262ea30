/**
 * `deno task nested [options] -- COMMAND [ARGS...]`: runs COMMAND in the project root inside
 * the nested test bed (./README.md) and exits with its status.
 */
import { parseArgs } from "node:util";
import { BedError, runInBed } from "./run.ts";
import { buildImage } from "./image.ts";

const HELP = `Run a command inside the nested test bed: Debian's kernel with its own KVM on
QEMU's emulated CPU (no host KVM needed), with this work tree and deno inside.

Usage: deno task nested [options] -- COMMAND [ARGS...]
       deno task nested --build-only [options]

  COMMAND is run in the project root (argv as given, no shell: use sh -c '...' for
  shell syntax) with deno on PATH and /dev/kvm present. Its output is streamed;
  the exit status is COMMAND's, or 125 when the bed itself fails.

Options:
  --include PATH   also carry PATH (file or directory; relative to the project
                   root), at the same path inside; repeatable (e.g. .cache/kernel)
  --tool NAME      also carry the program NAME with its libraries; repeatable
  --with-qemu      carry qemu-system-x86_64, its libraries and firmware (-L help)
  --no-kvm         do not load the kvm modules (no /dev/kvm inside)
  --env K=V        set K for the command; repeatable
  --memory MIB     guest memory (default 4096)
  --cpus N         vCPUs (default 2)
  --tcg-threads single|multi
                   QEMU's TCG threading (default single; multi for Linux
                   guests of more than one vCPU: see RunOptions.tcgThreads)
  --timeout S      kill the bed after S seconds
  --build-only     build (or find) the image, print its path, boot nothing
  -h, --help       show this help

Examples:
  deno task nested -- deno test --allow-all tests/runtime/
  deno task nested -- deno task vmdesc boot examples/hello.vmdesc
  deno task nested --include .cache/kernel --with-qemu -- sh -c 'ls -l /dev/kvm'
`;

function fail(message: string): never {
  console.error(`[bed] error: ${message}`);
  Deno.exit(125);
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        include: { type: "string", multiple: true },
        tool: { type: "string", multiple: true },
        "with-qemu": { type: "boolean" },
        "no-kvm": { type: "boolean" },
        env: { type: "string", multiple: true },
        memory: { type: "string" },
        cpus: { type: "string" },
        "tcg-threads": { type: "string" },
        timeout: { type: "string" },
        "build-only": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`[bed] ${(e as Error).message}\n\n${HELP}`);
    Deno.exit(2);
  }
})();

if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

const number = (flag: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) fail(`--${flag} wants a positive number, not '${v}'`);
  return n;
};
const env: Record<string, string> = {};
for (const kv of values.env ?? []) {
  const eq = kv.indexOf("=");
  if (eq <= 0) fail(`--env wants K=V, not '${kv}'`);
  env[kv.slice(0, eq)] = kv.slice(eq + 1);
}
const tcgThreads = values["tcg-threads"];
if (tcgThreads !== undefined && tcgThreads !== "single" && tcgThreads !== "multi") {
  fail(`--tcg-threads wants single or multi, not '${tcgThreads}'`);
}
const log = (line: string) => console.error(`[bed] ${line}`);
const common = {
  include: values.include,
  tools: values.tool,
  withQemu: values["with-qemu"],
  log,
};

try {
  if (values["build-only"]) {
    const image = await buildImage(common);
    console.log(image.path);
    Deno.exit(0);
  }
  if (positionals.length === 0) {
    console.error(`[bed] no command given\n\n${HELP}`);
    Deno.exit(2);
  }
  const r = await runInBed({
    ...common,
    command: positionals,
    env,
    kvm: !values["no-kvm"],
    memoryMiB: number("memory", values.memory),
    cpus: number("cpus", values.cpus),
    tcgThreads,
    timeoutSeconds: number("timeout", values.timeout),
  });
  log(
    `${positionals[0]} exited with ${r.status}; bed up in ${r.bootSeconds.toFixed(1)} s, ` +
      `command ${r.commandSeconds.toFixed(1)} s, total ${r.seconds.toFixed(1)} s`,
  );
  Deno.exit(r.status);
} catch (e) {
  if (e instanceof BedError) fail(e.message);
  throw e;
}
