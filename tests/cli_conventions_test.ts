/**
 * The command-line conventions users of CUE, Terraform, Pkl and rustc expect (issue 14):
 * `--format` on every command that prints a result, `fmt --diff`, `--no-color` and
 * NO_COLOR, no path meaning the current directory, and outputs written durably (fsync
 * before the rename, then the directory). All through the real CLI in a subprocess.
 */
import { assertRun as assert, CLI, vmdesc } from "./util/cli.ts";

const root = new URL("../", import.meta.url);
async function scratch(): Promise<string> {
  await Deno.mkdir(new URL(".cache/", root), { recursive: true });
  return await Deno.makeTempDir({ dir: new URL(".cache/", root).pathname, prefix: "conv_" });
}

const HELLO = await Deno.readTextFile(new URL("examples/hello.vmdesc", root));
const MESSY = `machine m{memory 64 MiB
 device serial com1{port 0x3f8 irq 4}
   boot pvh "x.elf"}
`;

Deno.test("conventions: check and fmt without a path work on the current directory", async () => {
  const dir = await scratch();
  try {
    await Deno.writeTextFile(`${dir}/a.vmdesc`, HELLO);
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/sub/b.vmdesc`, MESSY);
    const c = await vmdesc(["check", "--format", "json"], { cwd: dir });
    const paths = JSON.parse(c.stdout).files.map((f: { path: string }) => f.path);
    assert(c.code === 0 && paths.join() === "a.vmdesc,sub/b.vmdesc", "check with no path", c);
    const f = await vmdesc(["fmt"], { cwd: dir });
    assert(f.code === 0 && f.stderr.includes("formatted 1 file"), "fmt with no path", f);
    const after = await Deno.readTextFile(`${dir}/sub/b.vmdesc`);
    assert(after !== MESSY && after.includes("  device serial com1 {"), "sub/b.vmdesc formatted");
    const empty = await Deno.makeTempDir({ dir, prefix: "empty" });
    const e = await vmdesc(["check"], { cwd: empty });
    assert(e.code === 2 && e.stderr.includes("error[E2002]: no .vmdesc files in ."), "empty", e);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conventions: --format on check, plan, fmt and explain; --json stays an alias", async () => {
  const text = await vmdesc(["check", "--format", "text", "examples/hello.vmdesc"]);
  assert(text.code === 0 && text.stdout.startsWith("ok: 1 file"), "check --format text", text);
  const human = await vmdesc(["check", "--format", "human", "examples/hello.vmdesc"]);
  assert(human.code === 0 && human.stdout === text.stdout, "human is text's old name", human);
  const bad = await vmdesc(["check", "--format", "yaml", "examples/hello.vmdesc"]);
  assert(bad.code === 2 && bad.stderr.includes("error[E2001]: unknown format 'yaml'"), "bad", bad);

  const viaFormat = await vmdesc(["plan", "--format", "json", "examples/scan.vmdesc"]);
  const viaAlias = await vmdesc(["plan", "--json", "examples/scan.vmdesc"]);
  assert(viaFormat.code === 0 && viaFormat.stdout === viaAlias.stdout, "--json = --format json");
  assert(JSON.parse(viaFormat.stdout).machine === "scan", "a Plan", viaFormat);
  const table = await vmdesc(["plan", "--format", "table", "examples/scan.vmdesc"]);
  const plain = await vmdesc(["plan", "examples/scan.vmdesc"]);
  assert(table.code === 0 && table.stdout === plain.stdout, "table is the default", table);
  const svg = await vmdesc(["plan", "--format", "svg", "examples/scan.vmdesc"]);
  assert(
    svg.code === 0 && /^<svg[^>]*>/.test(svg.stdout) && svg.stdout.trimEnd().endsWith("</svg>"),
    "svg",
    svg,
  );
  const both = await vmdesc(["plan", "--json", "--format", "svg", "examples/scan.vmdesc"]);
  assert(both.code === 2 && both.stderr.includes("two formats"), "--json with svg", both);

  const fmt = await vmdesc(["fmt", "--check", "--format", "json", "examples/hello.vmdesc"], {});
  const fdoc = JSON.parse(fmt.stdout);
  assert(
    fmt.code === 0 && fdoc.version === 1 && fdoc.files[0].status === "unchanged",
    "fmt --format json",
    fmt,
  );

  const ex = await vmdesc(["explain", "--format", "json", "E0201"]);
  const edoc = JSON.parse(ex.stdout);
  assert(edoc.code === "E0201" && edoc.title === "overlapping regions", "explain json", ex);
  assert(edoc.text.startsWith("## E0201: overlapping regions"), "explain json text", ex);
  const list = JSON.parse((await vmdesc(["explain", "--format", "json"])).stdout);
  assert(list.codes.some((c: { code: string }) => c.code === "W0007"), "explain json list");
});

Deno.test("conventions: fmt --diff prints a unified diff that patch applies; nothing is written", async () => {
  const dir = await scratch();
  try {
    await Deno.writeTextFile(`${dir}/m.vmdesc`, MESSY);
    const d = await vmdesc(["fmt", "--diff", "m.vmdesc"], { cwd: dir });
    assert(d.code === 0, "--diff alone exits 0", d);
    assert(
      d.stdout.startsWith("--- m.vmdesc\t(original)\n+++ m.vmdesc\t(formatted)\n@@ "),
      "header",
      d,
    );
    assert(await Deno.readTextFile(`${dir}/m.vmdesc`) === MESSY, "--diff changes nothing");
    const c = await vmdesc(["fmt", "--check", "--diff", "m.vmdesc"], { cwd: dir });
    assert(c.code === 1 && c.stdout === d.stdout, "--check --diff exits 1 with the diff", c);

    // The diff is real: patch(1) turns the file into what `fmt -` prints.
    const p = await new Deno.Command("patch", {
      args: ["-p0", "--quiet"],
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(d.stdout));
    await w.close();
    const ps = await p.output();
    assert(ps.code === 0, `patch failed: ${new TextDecoder().decode(ps.stderr)}`);
    const formatted = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", CLI, "fmt", "-"],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const fw = formatted.stdin.getWriter();
    await fw.write(new TextEncoder().encode(MESSY));
    await fw.close();
    const want = new TextDecoder().decode((await formatted.output()).stdout);
    assert(await Deno.readTextFile(`${dir}/m.vmdesc`) === want, "patched file = fmt output");
    const clean = await vmdesc(["fmt", "--diff", "m.vmdesc"], { cwd: dir });
    assert(clean.code === 0 && clean.stdout === "", "no diff once formatted", clean);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs the CLI on a pseudo-terminal (script(1)), where colors are on by default. */
async function onTerminal(args: string[], env: Record<string, string> = {}): Promise<string> {
  const cmd = [Deno.execPath(), "run", "--allow-read", "--allow-env", CLI, ...args]
    .map((a) => `'${a}'`).join(" ");
  const out = await new Deno.Command("script", {
    args: ["-qec", cmd, "/dev/null"],
    cwd: root.pathname,
    env: { TERM: "xterm", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("conventions: colors on a terminal, none with --no-color or NO_COLOR", async () => {
  const dir = await scratch();
  try {
    const bad = `${dir}/bad.vmdesc`;
    await Deno.writeTextFile(bad, "machine m { cpus 0 }\n");
    const colored = await onTerminal(["check", bad], { NO_COLOR: "" });
    assert(colored.includes("\x1b[1;31merror"), `a terminal gets colors:\n${colored}`);
    const flag = await onTerminal(["check", "--no-color", bad], { NO_COLOR: "" });
    assert(flag.includes("error[") && !flag.includes("\x1b["), `--no-color:\n${flag}`);
    const first = await onTerminal(["--no-color", "check", bad], { NO_COLOR: "" });
    assert(first.includes("error[") && !first.includes("\x1b["), `--no-color first:\n${first}`);
    const env = await onTerminal(["check", bad], { NO_COLOR: "1" });
    assert(env.includes("error[") && !env.includes("\x1b["), `NO_COLOR=1:\n${env}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conventions: a rewritten file is fsynced before its rename, and its directory after", async () => {
  const dir = await scratch();
  try {
    await Deno.writeTextFile(`${dir}/m.vmdesc`, MESSY);
    const log = `${dir}/strace.log`;
    const out = await new Deno.Command("strace", {
      // One log per thread (-ff: no call split into "unfinished"/"resumed" halves by
      // another thread's), merged by entry time (-ttt).
      args: [
        "-ff",
        "-ttt",
        "-o",
        log,
        "-e",
        "trace=openat,fsync,fdatasync,rename,renameat,renameat2,dup,dup2,dup3,fcntl",
        Deno.execPath(),
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        CLI,
        "fmt",
        "m.vmdesc",
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.code === 0, `strace vmdesc fmt: ${new TextDecoder().decode(out.stderr)}`);
    const lines: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.startsWith("strace.log.")) continue;
      lines.push(...(await Deno.readTextFile(`${dir}/${e.name}`)).split("\n").filter((l) => l));
    }
    lines.sort((a, b) => parseFloat(a) - parseFloat(b));
    const tmpOpen = lines.findIndex((l) => /openat\(.*\.m\.vmdesc\.\d+\.\w+\.tmp".*= \d+$/.test(l));
    assert(tmpOpen >= 0, "the temp file is opened");
    // Deno may sync through a duplicate of the descriptor: follow dup/fcntl(F_DUPFD).
    const aliases = (fd: string, from: number) => {
      const set = new Set([fd]);
      for (const l of lines.slice(from)) {
        const m = /(?:dup[23]?|fcntl)\((\d+)(?:, F_DUPFD\w*)?[^)]*\)\s*= (\d+)/.exec(l);
        if (m && set.has(m[1]) && (l.includes("dup") || l.includes("F_DUPFD"))) set.add(m[2]);
      }
      return set;
    };
    const synced = (fds: Set<string>, from: number, to: number) =>
      lines.slice(from, to).some((l) => {
        const m = /\b(?:fsync|fdatasync)\((\d+)/.exec(l);
        return m !== null && fds.has(m[1]) && !/= -1/.test(l);
      });
    const tmpFd = /= (\d+)$/.exec(lines[tmpOpen])![1];
    const rename = lines.findIndex((l) => /rename(at2?)?\(.*\.tmp".*m\.vmdesc"/.test(l));
    assert(rename > tmpOpen, "renamed into place");
    assert(
      synced(aliases(tmpFd, tmpOpen), tmpOpen, rename),
      "the temp file is fsynced before the rename",
    );
    // Deno makes paths absolute when permissions name them; "." with --allow-all.
    const dirOpen = lines.findIndex((l, i) =>
      i > rename && (l.includes(`openat(AT_FDCWD, "${dir}", O_RDONLY`) ||
        l.includes(`openat(AT_FDCWD, ".", O_RDONLY`)) &&
      /= \d+$/.test(l)
    );
    assert(dirOpen > rename, "the directory is opened after the rename");
    const dirFd = /= (\d+)$/.exec(lines[dirOpen])![1];
    assert(
      synced(aliases(dirFd, dirOpen), dirOpen, lines.length),
      "the directory is fsynced after the rename",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
