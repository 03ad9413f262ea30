/**
 * `vmdesc completions`: the scripts are loaded into the real shells and asked to complete,
 * as a user's Tab would: bash through its completion function (COMP_WORDS/COMP_CWORD, as
 * readline sets them), fish through `complete -C`, zsh by loading the script under
 * compinit (and a syntax check).
 */
import { skipReason } from "./skip.ts";

const root = new URL("../", import.meta.url).pathname;
const CLI = `${root}cli/vmdesc.ts`;

/** A test that needs `tools` (skipped only as tests/skip.ts decides and prints). */
function shellTest(name: string, tools: string[], fn: () => Promise<void>) {
  Deno.test({ name, ignore: skipReason(name, { tools }) !== null, fn });
}

/**
 * Asks bash's completion function (the script at `file` sourced) for each case's words, as
 * readline sets COMP_WORDS and COMP_CWORD after a Tab; the candidates, per case. A case
 * whose first word is `complete` is run as a command instead (its output is the block).
 */
async function bashComplete(
  file: string,
  cases: [string[], string[]][],
  env: Record<string, string> = {},
): Promise<string[][]> {
  const calls = cases.map(([words]) =>
    words[0] === "complete"
      ? `${words.join(" ")}; echo '--'`
      : `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; ` +
        `COMPREPLY=(); _vmdesc; printf '%s\\n' "\${COMPREPLY[@]}"; echo '--'`
  );
  const out = await sh("bash", [
    "--norc",
    "--noprofile",
    "-c",
    `source '${file}'\n${calls.join("\n")}`,
  ], env);
  return out.split("--\n").map((b) => b.split("\n").filter((l) => l));
}

async function script(shell: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", CLI, "completions", shell],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  const file = await Deno.makeTempFile({ prefix: "vmdesc-completion-" });
  await Deno.writeTextFile(file, new TextDecoder().decode(out.stdout));
  return file;
}

async function sh(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(
      `${cmd} failed (${out.code}):\n${text}\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return text;
}

function equal(actual: unknown, expected: unknown, what: string) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}\nexpected: ${e}\nactual:   ${a}`);
}

Deno.test("completions: bash completes commands, flags, flag values, codes and files", async () => {
  const file = await script("bash");
  try {
    // Each case: the words on the line (the last is the one being completed).
    const cases: [string[], string[]][] = [
      [["vmdesc", "ch"], ["check"]],
      [["vmdesc", "c"], ["check", "ctl", "completions"]],
      [["vmdesc", "--no-color", "ex"], ["explain"]],
      [["vmdesc", "--v"], ["--version"]],
      [["vmdesc", "plan", "--f"], ["--format"]],
      [["vmdesc", "fmt", "--d"], ["--diff"]],
      [["vmdesc", "boot", "--hole"], ["--hole-strategy"]],
      [["vmdesc", "plan", "--format", ""], ["table", "json", "svg"]],
      [["vmdesc", "check", "--format", "=", "j"], ["json"]],
      [["vmdesc", "boot", "--hole-strategy", "s"], ["shadow"]],
      [["vmdesc", "explain", "E030"], ["E0301", "E0302", "E0303", "E0304", "E0305", "E0306"]],
      [["vmdesc", "completions", ""], ["bash", "zsh", "fish"]],
      [["vmdesc", "check", "examples/he"], ["examples/hello.vmdesc"]],
      [["vmdesc", "check", "exampl"], ["examples"]],
    ];
    const [registered, ...blocks] = await bashComplete(
      file,
      [[["complete", "-p", "vmdesc"], []], ...cases],
    );
    equal(registered, ["complete -F _vmdesc vmdesc"], "the function is registered for vmdesc");
    cases.forEach(([words, want], i) => equal(blocks[i], want, words.join(" ")));
  } finally {
    await Deno.remove(file);
  }
});

shellTest("completions: fish completes commands, flags and their values", ["fish"], async () => {
  const file = await script("fish");
  try {
    const ask = async (line: string) =>
      (await sh("fish", ["--no-config", "-c", `source '${file}'; complete -C '${line}'`]))
        .split("\n").filter((l) => l).map((l) => l.split("\t")[0]);
    equal(await ask("vmdesc ch"), ["check"], "vmdesc ch");
    equal(await ask("vmdesc plan --fo"), ["--format"], "vmdesc plan --fo");
    equal((await ask("vmdesc plan --format ")).sort(), ["json", "svg", "table"], "values");
    equal((await ask("vmdesc explain E020")).length, 9, "codes E0201..E0209");
    equal(await ask("vmdesc check examples/hel"), ["examples/hello.vmdesc"], "files");
  } finally {
    await Deno.remove(file);
  }
});

shellTest(
  "completions: zsh loads the script under compinit and binds it to vmdesc",
  ["zsh"],
  async () => {
    const file = await script("zsh");
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-zfunc-" });
    try {
      await sh("zsh", ["-n", file]);
      await Deno.copyFile(file, `${dir}/_vmdesc`);
      const out = await sh("zsh", [
        "-f",
        "-c",
        `fpath=('${dir}' $fpath); autoload -U compinit; compinit -u -d '${dir}/.zcompdump'; ` +
        `print -r -- "bound: $_comps[vmdesc]"; autoload -Uz +X _vmdesc && print -r -- loaded`,
      ]);
      equal(out.trim().split("\n"), ["bound: _vmdesc", "loaded"], "compinit found _vmdesc");
    } finally {
      await Deno.remove(file);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * A runtime directory holding one live control socket, `web1` (as `vmdesc boot
 * --api-sock web1` would leave it), for `vmdesc ctl`'s machine-name completion.
 */
async function withMachineSocket(fn: (xdg: string) => Promise<void>): Promise<void> {
  const xdg = await Deno.makeTempDir({ prefix: "vmdesc-xdg-" });
  await Deno.mkdir(`${xdg}/vmdesc`, { mode: 0o700 });
  const listener = Deno.listen({ transport: "unix", path: `${xdg}/vmdesc/web1.sock` });
  try {
    await fn(xdg);
  } finally {
    listener.close();
    await Deno.remove(xdg, { recursive: true });
  }
}

shellTest("completions: ctl completes running machines' names, then its commands", [
  "bash",
  "fish",
], async () => {
  const file = await script("bash");
  try {
    await withMachineSocket(async (xdg) => {
      const cases: [string[], string[]][] = [
        [["vmdesc", "ct"], ["ctl"]],
        [["vmdesc", "ctl", "we"], ["web1"]],
        [["vmdesc", "ctl", "web1", "st"], ["stats", "stop"]],
        [["vmdesc", "ctl", "--format", "json", "web1", "p"], ["plan", "pause"]],
        [["vmdesc", "ctl", "web1", "pause", ""], []],
        [["vmdesc", "ctl", "web1", "--format", ""], ["text", "json"]],
        [["vmdesc", "ps", "--f"], ["--format"]],
      ];
      const blocks = await bashComplete(file, cases, { XDG_RUNTIME_DIR: xdg });
      cases.forEach(([words, want], i) => equal(blocks[i], want, words.join(" ")));
    });
  } finally {
    await Deno.remove(file);
  }
  const fishFile = await script("fish");
  try {
    await withMachineSocket(async (xdg) => {
      const ask = async (line: string) =>
        (await sh("fish", ["--no-config", "-c", `source '${fishFile}'; complete -C '${line}'`], {
          XDG_RUNTIME_DIR: xdg,
        })).split("\n").filter((l) => l).map((l) => l.split("\t")[0]);
      equal(await ask("vmdesc ctl we"), ["web1"], "fish: vmdesc ctl we");
      equal(
        (await ask("vmdesc ctl web1 st")).sort(),
        ["stats", "stop"],
        "fish: vmdesc ctl web1 st",
      );
    });
  } finally {
    await Deno.remove(fishFile);
  }
});
