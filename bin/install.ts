/**
 * `deno task install [--root DIR]`: puts a `vmdesc` command on PATH (DIR/bin/vmdesc;
 * default ~/.local/bin/vmdesc) that runs this checkout's CLI exactly as `deno task vmdesc`
 * does: the same V8 flags and permissions (read from that task in deno.json, so they
 * cannot drift), this checkout's deno.json (its npm imports and lock file), from any
 * directory.
 *
 * Not `deno install`: its launcher calls `deno` from PATH, and with the npm-provided Deno
 * (`npx -y deno@…`) there is none. This launcher calls the Deno binary that ran the install
 * (`Deno.execPath()`), then a `deno` on PATH, then `npx -y deno@<that version>`, whichever
 * is there when it runs. Uninstall: delete the file.
 */
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

/** The `deno run` flags of the `vmdesc` task: ["--v8-flags=--no-lazy", "--allow-read", …]. */
export function taskFlags(denoJson: string): string[] {
  const task: unknown = JSON.parse(denoJson).tasks?.vmdesc;
  const words = typeof task === "string" ? task.trim().split(/\s+/) : [];
  // Leading NAME=value words set the task's environment (VMDESC_INIT_CWD), not flags.
  while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) words.shift();
  if (words[0] !== "deno" || words[1] !== "run" || words[words.length - 1] !== "cli/vmdesc.ts") {
    throw new Error(`deno.json task "vmdesc" is not "deno run … cli/vmdesc.ts": ${String(task)}`);
  }
  return words.slice(2, -1);
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The launcher script for this checkout. */
export function launcher(root: string, flags: string[], deno: string, version: string): string {
  const args = [...flags, "--config", `${root}/deno.json`, `${root}/cli/vmdesc.ts`]
    .map(q).join(" ");
  return `#!/bin/sh
# vmdesc, installed by 'deno task install' from ${root}
# Runs its CLI with the flags and permissions of deno.json's "vmdesc" task.
# Uninstall: delete this file.
deno=${q(deno)}
if [ ! -x "$deno" ]; then
  deno=$(command -v deno 2>/dev/null) || deno=
fi
if [ -n "$deno" ]; then
  exec "$deno" run ${args} "$@"
fi
exec npx -y ${q(`deno@${version}`)} run ${args} "$@"
`;
}

if (import.meta.main) {
  const args = [...Deno.args];
  let root = `${Deno.env.get("HOME") ?? "."}/.local`;
  const at = args.indexOf("--root");
  if (at >= 0) {
    if (!args[at + 1]) {
      console.error("usage: deno task install [--root DIR]   (installs DIR/bin/vmdesc)");
      Deno.exit(2);
    }
    root = args[at + 1];
    args.splice(at, 2);
  }
  if (args.length) {
    console.error(`unexpected argument '${args[0]}'; usage: deno task install [--root DIR]`);
    Deno.exit(2);
  }
  // Relative to where the user typed `deno task install` (deno task runs in the project root).
  const typedIn = Deno.env.get("VMDESC_INIT_CWD");
  if (!root.startsWith("/")) root = `${typedIn || Deno.cwd()}/${root}`;
  const flags = taskFlags(await Deno.readTextFile(`${ROOT}/deno.json`));
  const bin = `${root.replace(/\/$/, "")}/bin`;
  await Deno.mkdir(bin, { recursive: true });
  const target = `${bin}/vmdesc`;
  const tmp = `${target}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, launcher(ROOT, flags, Deno.execPath(), Deno.version.deno), {
    mode: 0o755,
  });
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, target);
  const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(bin);
  console.log(`installed ${target}`);
  if (!onPath) console.log(`${bin} is not on your PATH: add it, e.g. export PATH="${bin}:$PATH"`);
  console.log(
    "shell completions: vmdesc completions bash|zsh|fish (see vmdesc completions --help)",
  );
}
