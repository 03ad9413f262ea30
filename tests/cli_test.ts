/**
 * The real `vmdesc` CLI, run as a subprocess exactly as a user would: output, exit
 * statuses (0 ok, 1 problems, 2 usage) and the files it writes.
 */
import { checkXml } from "./util/xml.ts";
import { assertRun as assert, CLI, denoTask, type Run, vmdesc as run } from "./util/cli.ts";

const root = new URL("../", import.meta.url);

/** `vmdesc ARGS` (with `stdin` on standard input), in the repository. */
const vmdesc = (args: string[], stdin?: string) => run(args, { stdin });

async function examples(): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL("examples/", root))) {
    if (e.isFile && e.name.endsWith(".vmdesc")) out.push(`examples/${e.name}`);
  }
  return out.sort();
}

/** A scratch directory inside the repository (so relative paths in messages stay short). */
async function scratch(): Promise<string> {
  await Deno.mkdir(new URL(".cache/", root), { recursive: true });
  return await Deno.makeTempDir({ dir: new URL(".cache/", root).pathname, prefix: "cli_test_" });
}

const OVERLAP = `machine m {
  cpus 1
  ram 0 .. 2 GiB
  ram 1 GiB + 2 GiB
  device serial com1 { port 0x3f8 irq 4 }
  boot pvh "guest.elf"
}
`;

// ── top level ────────────────────────────────────────────────────────────

Deno.test("cli: --version prints the deno.json version", async () => {
  const version = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).version;
  for (const flag of ["--version", "-V"]) {
    const r = await vmdesc([flag]);
    assert(r.code === 0 && r.stdout === `vmdesc ${version}\n`, `${flag}`, r);
  }
});

Deno.test("cli: --help on the top level and on every command", async () => {
  const top = await vmdesc(["--help"]);
  assert(top.code === 0, "--help exit", top);
  for (const c of ["check", "plan", "fmt", "explain", "boot", "lsp"]) {
    assert(top.stdout.includes(`  ${c} `), c, top);
  }
  for (const c of ["check", "plan", "fmt", "explain"]) {
    for (const flag of ["--help", "-h"]) {
      const r = await vmdesc([c, flag]);
      assert(
        r.code === 0 && r.stdout.includes(`vmdesc ${c}`) && r.stdout.includes("Usage:"),
        `${c} ${flag}`,
        r,
      );
    }
  }
  const none = await vmdesc([]);
  assert(none.code === 2 && none.stdout.includes("Usage:"), "no command: usage, exit 2", none);
});

Deno.test("cli: outputs go through a symlink to its file, and into a FIFO in place", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-cli-out-" });
  try {
    // plan --svg into a symlink: the link stays a link, the file it points to gets the map.
    await Deno.writeTextFile(`${dir}/real.svg`, "old");
    await Deno.symlink(`${dir}/real.svg`, `${dir}/link.svg`);
    const viaLink = await vmdesc(["plan", "examples/hello.vmdesc", "--svg", `${dir}/link.svg`]);
    assert(viaLink.code === 0, "plan --svg via a link", viaLink);
    assert(Deno.lstatSync(`${dir}/link.svg`).isSymlink, "the link is still a link", viaLink);
    assert(Deno.readTextFileSync(`${dir}/real.svg`).startsWith("<svg"), "target written", viaLink);
    // fmt on a symlinked .vmdesc formats the file behind it.
    await Deno.writeTextFile(`${dir}/m.vmdesc`, "machine m {\nmemory 64 MiB\n}\n");
    await Deno.symlink(`${dir}/m.vmdesc`, `${dir}/m-link.vmdesc`);
    const fmt = await vmdesc(["fmt", `${dir}/m-link.vmdesc`]);
    assert(
      fmt.code === 0 && Deno.lstatSync(`${dir}/m-link.vmdesc`).isSymlink,
      "fmt via a link",
      fmt,
    );
    assert(
      Deno.readTextFileSync(`${dir}/m.vmdesc`).includes("\n  memory 64 MiB"),
      "formatted",
      fmt,
    );
    // plan --svg into a FIFO: a reader gets the whole map, and the FIFO stays a FIFO.
    const fifo = `${dir}/map.fifo`;
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert(mk.code === 0, "mkfifo", { code: mk.code, stdout: "", stderr: "" });
    const reading = Deno.readTextFile(fifo);
    const intoFifo = await vmdesc(["plan", "examples/hello.vmdesc", "--svg", fifo]);
    const got = await reading;
    assert(
      intoFifo.code === 0 && got.startsWith("<svg") && got.trimEnd().endsWith("</svg>"),
      "fifo",
      intoFifo,
    );
    assert(Deno.lstatSync(fifo).isFifo, "still a FIFO", intoFifo);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert(
      left.join(",") === "link.svg,m-link.vmdesc,m.vmdesc,map.fifo,real.svg",
      "no temp files",
      {
        code: 0,
        stdout: left.join(","),
        stderr: "",
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: lsp's bad flags are E2001 usage errors with a hint, like every command's", async () => {
  for (const args of [["lsp", "--foo"], ["lsp", "--debounce", "soon"], ["lsp", "extra"]]) {
    const r = await vmdesc(args);
    assert(
      r.code === 2 && r.stderr.startsWith("error[E2001]: ") && r.stderr.includes("= help: "),
      args.join(" "),
      r,
    );
  }
});

Deno.test("cli: '-' twice reads stdin once and checks it twice, no crash", async () => {
  const text =
    'machine m {\n  memory 64 MiB\n  device serial com1 { port 0x3f8 }\n  boot flat "x" { load 0x100000 }\n}\n';
  const r = await vmdesc(["check", "--format", "json", "-", "-"], text);
  assert(r.code === 0 && !r.stderr.includes("locked"), "check - -", r);
  const files = JSON.parse(r.stdout).files as { path: string }[];
  assert(files.length === 2 && files.every((f) => f.path === "<stdin>"), "both inputs reported", r);
});

Deno.test("cli: unknown command or flag is a usage error with a suggestion", async () => {
  const r = await vmdesc(["chek", "examples/hello.vmdesc"]);
  assert(
    r.code === 2 && r.stderr.includes("error[E2001]: unknown command 'chek'") &&
      r.stderr.includes("did you mean 'check'"),
    "chek",
    r,
  );
  const f = await vmdesc(["plan", "--jsno", "examples/hello.vmdesc"]);
  assert(f.code === 2 && f.stderr.includes("did you mean '--json'"), "--jsno", f);
  const fmt = await vmdesc(["check", "--format", "xml", "examples/hello.vmdesc"]);
  assert(fmt.code === 2, "--format xml", fmt);
});

Deno.test("cli: files it cannot read or write are coded errors (E2002, E2003), nothing left behind", async () => {
  const missing = await vmdesc(["check", "no/such/file.vmdesc"]);
  assert(
    missing.code === 2 &&
      missing.stderr.startsWith("error[E2002]: cannot read 'no/such/file.vmdesc'") &&
      missing.stderr.includes("= help:"),
    "unreadable input",
    missing,
  );
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-cli-" });
  try {
    const svg = `${dir}/missing-dir/map.svg`;
    const w = await vmdesc(["plan", "examples/hello.vmdesc", "--svg", svg]);
    assert(
      w.code === 1 && w.stderr.startsWith(`error[E2003]: cannot write '${svg}'`),
      "unwritable output",
      w,
    );
    assert([...Deno.readDirSync(dir)].length === 0, "no partial or temp file left", w);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const noMachine = await vmdesc(["plan", "examples/hello.vmdesc", "--machine", "helo"]);
  assert(
    noMachine.code !== 0 && /error\[E0105\]/.test(noMachine.stderr),
    "unknown machine",
    noMachine,
  );
});

// ── check ────────────────────────────────────────────────────────────────

Deno.test("cli: check passes on every example", async () => {
  const files = await examples();
  assert(files.length >= 6, `expected the examples, found ${files.length}`);
  const r = await vmdesc(["check", ...files]);
  assert(r.code === 0 && !r.stdout.includes("error["), "examples check clean", r);
});

Deno.test("cli: check renders errors rustc-style and exits 1; json is versioned", async () => {
  const dir = await scratch();
  try {
    const file = `${dir}/overlap.vmdesc`;
    await Deno.writeTextFile(file, OVERLAP);
    const r = await vmdesc(["check", file]);
    assert(r.code === 1, "exit 1 on errors", r);
    assert(/^error\[E0201\]: /m.test(r.stdout), "code and message", r);
    assert(r.stdout.includes(`--> ${file}:`), "location line", r);
    assert(
      /\n\s*4 \|\s+ram 1 GiB \+ 2 GiB\n\s*\|\s+\^+/.test(r.stdout),
      "source line with carets",
      r,
    );
    assert(/error: \d+ errors?/.test(r.stdout), "summary line", r);
    assert(!r.stdout.includes("\x1b["), "no colors when piped", r);

    const j = await vmdesc(["check", "--format", "json", file]);
    assert(j.code === 1, "json exit 1", j);
    const doc = JSON.parse(j.stdout);
    assert(doc.version === 1 && doc.valid === false && doc.error_count >= 1, "json header", j);
    assert(doc.files[0].path === file, "files[]", j);
    const d = doc.diagnostics.find((x: { code: string }) => x.code === "E0201");
    assert(d && d.severity === "error" && d.file === file, "E0201 in json", j);
    assert(d.range.start.line === 4 && d.range.start.column >= 3, "1-based range", j);
    assert(Array.isArray(d.labels) && "hint" in d, "labels and hint", j);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: check of a missing file is exit 2; stdin works", async () => {
  const r = await vmdesc(["check", "no/such/file.vmdesc"]);
  assert(r.code === 2 && r.stderr.includes("cannot read 'no/such/file.vmdesc'"), "missing file", r);
  const s = await vmdesc(["check", "-"], OVERLAP);
  assert(s.code === 1 && s.stdout.includes("--> <stdin>:"), "stdin", s);
});

Deno.test("cli: check --format json on an unreadable file is not a pass (E2002 in the report)", async () => {
  const r = await vmdesc([
    "check",
    "--format",
    "json",
    "no/such/file.vmdesc",
    "examples/hello.vmdesc",
  ]);
  assert(r.code === 2, "exit 2", r);
  const doc = JSON.parse(r.stdout);
  assert(doc.valid === false && doc.error_count === 1, "the document says it failed", r);
  const file = doc.files.find((f: { path: string }) => f.path === "no/such/file.vmdesc");
  assert(
    file && file.valid === false && file.error_count === 1,
    "the file is listed as invalid",
    r,
  );
  assert(doc.files.some((f: { path: string; valid: boolean }) => f.valid), "the good file", r);
  const d = doc.diagnostics.find((x: { code: string }) => x.code === "E2002");
  assert(
    d && d.severity === "error" && /cannot read 'no\/such\/file.vmdesc'/.test(d.message),
    "E2002",
    r,
  );
  assert(
    d.title === "cannot read an input file" && d.hint.includes("looked for"),
    "title, hint",
    r,
  );
});

/** `deno task vmdesc ARGS` typed in `cwd`, as a user would. */
const task = (args: string[], cwd: string): Promise<Run> => denoTask("vmdesc", args, cwd);

Deno.test("cli: deno task vmdesc resolves paths from the directory it was typed in", async () => {
  const dir = await scratch();
  try {
    const hello = await Deno.readTextFile(new URL("examples/hello.vmdesc", root));
    await Deno.writeTextFile(`${dir}/micro.vmdesc`, hello);
    const c = await task(["check", "micro.vmdesc"], dir);
    assert(c.code === 0 && /--> micro\.vmdesc:/.test(c.stdout), "check finds micro.vmdesc", c);
    const p = await task(["plan", "--json", "micro.vmdesc"], dir);
    assert(p.code === 0 && JSON.parse(p.stdout).machine === "hello", "plan finds it too", p);
    const m = await task(["check", "nope.vmdesc"], dir);
    assert(
      m.code === 2 && m.stderr.includes(`looked for ${dir}/nope.vmdesc (relative to ${dir},`),
      "a missing file says which directory was searched",
      m,
    );
    // An INIT_CWD inherited from elsewhere (a test runner's own task) moves nothing.
    const stray = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", CLI, "check", "examples/hello.vmdesc"],
      cwd: root.pathname,
      env: { INIT_CWD: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(stray.code === 0, "a stray INIT_CWD is ignored");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ── plan ─────────────────────────────────────────────────────────────────

Deno.test("cli: plan prints a table, --json the Plan", async () => {
  const t = await vmdesc(["plan", "examples/scan.vmdesc"]);
  assert(t.code === 0, "plan exit 0", t);
  for (
    const s of [
      "memslots",
      "PCI hole",
      "ECAM",
      "devices",
      "PCI functions",
      "e820",
      "boot",
      "0xE000_0000",
    ]
  ) {
    assert(t.stdout.includes(s), `table has ${s}`, t);
  }
  const j = await vmdesc(["plan", "--json", "examples/scan.vmdesc"]);
  assert(j.code === 0 && j.stdout.endsWith("}\n"), "json exit/newline", j);
  const plan = JSON.parse(j.stdout);
  assert(
    plan.version === 1 && plan.machine === "scan" && Array.isArray(plan.memslots),
    "plan shape",
    j,
  );
  assert(
    j.stdout.startsWith('{\n  "version": 1,\n  "machine": "scan",'),
    "stable key order, 2-space indent",
    j,
  );
});

Deno.test("cli: plan with errors prints diagnostics and no Plan, exit 1", async () => {
  const r = await vmdesc(["plan", "--json", "-"], OVERLAP);
  assert(
    r.code === 1 && r.stdout === "" && r.stderr.includes("error[E0201]"),
    "errors stop the plan",
    r,
  );
  const m = await vmdesc(["plan", "--machine", "nope", "examples/scan.vmdesc"]);
  assert(m.code === 1 && m.stderr.includes("E0105"), "unknown machine", m);
});

Deno.test("cli: plan --svg writes a well-formed, labelled memory map", async () => {
  const dir = await scratch();
  try {
    const out = `${dir}/scan.svg`;
    const r = await vmdesc(["plan", "examples/scan.vmdesc", "--svg", out]);
    assert(r.code === 0, "svg exit 0", r);
    const svg = await Deno.readTextFile(out);
    checkXml(svg);
    assert(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), "svg root");
    for (const label of ["RAM", "PCI hole", "ECAM", "IOAPIC", "LAPIC", "0xE000_0000", "MiB"]) {
      assert(svg.includes(label), `svg has label ${label}`);
    }
    const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n !== "scan.svg");
    assert(leftovers.length === 0, `no temp files left: ${leftovers.join(", ")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ── fmt ──────────────────────────────────────────────────────────────────

Deno.test("cli: fmt --check passes on the examples; a folder means every .vmdesc under it", async () => {
  const r = await vmdesc(["fmt", "--check", ...(await examples())]);
  assert(r.code === 0 && r.stdout === "", "examples are formatted", r);
  const dir = await vmdesc(["fmt", "--check", "examples"]);
  assert(dir.code === 0 && dir.stdout === "", "examples folder is formatted", dir);
  const c = await vmdesc(["check", "--format", "json", "examples/"]);
  const doc = JSON.parse(c.stdout);
  const paths = doc.files.map((f: { path: string }) => f.path);
  assert(
    c.code === 0 && paths.includes("examples/hello.vmdesc") &&
      paths.length >= (await examples()).length,
    "check a folder",
    c,
  );
});

Deno.test("cli: fmt rewrites only what changes; --check lists and exits 1; syntax errors leave files alone", async () => {
  const dir = await scratch();
  try {
    const messy = `${dir}/messy.vmdesc`;
    const text = "machine   m{cpus 1\n      memory 128 MiB   // keep me\n}\n";
    await Deno.writeTextFile(messy, text);
    const c = await vmdesc(["fmt", "--check", messy]);
    assert(c.code === 1 && c.stdout === `${messy}\n`, "--check lists the file", c);
    assert((await Deno.readTextFile(messy)) === text, "--check changes nothing");

    const f = await vmdesc(["fmt", messy]);
    assert(f.code === 0, "fmt exit 0", f);
    const formatted = await Deno.readTextFile(messy);
    assert(formatted !== text && formatted.includes("// keep me"), "rewritten, comment kept");
    const mtime = (await Deno.stat(messy)).mtime?.getTime();
    await new Promise((r) => setTimeout(r, 20));
    const again = await vmdesc(["fmt", messy]);
    assert(
      again.code === 0 && (await Deno.stat(messy)).mtime?.getTime() === mtime,
      "unchanged file not rewritten",
      again,
    );
    assert((await vmdesc(["fmt", "--check", messy])).code === 0, "now formatted");

    const broken = `${dir}/broken.vmdesc`;
    await Deno.writeTextFile(broken, "machine m {\n  cpus 1\n");
    const b = await vmdesc(["fmt", broken]);
    assert(b.code === 1 && b.stderr.includes("error[E0001]"), "syntax error reported", b);
    assert(
      (await Deno.readTextFile(broken)) === "machine m {\n  cpus 1\n",
      "broken file untouched",
    );
    const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert(leftovers.join(",") === "broken.vmdesc,messy.vmdesc", `no temp files: ${leftovers}`);

    const s = await vmdesc(["fmt", "-"], text);
    assert(s.code === 0 && s.stdout === formatted, "fmt - filters stdin to stdout", s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ── explain ──────────────────────────────────────────────────────────────

Deno.test("cli: explain prints the code's section; unknown codes suggest", async () => {
  const r = await vmdesc(["explain", "E0201"]);
  assert(
    r.code === 0 && r.stdout.startsWith("## E0201: overlapping regions\n") &&
      r.stdout.includes("**Fix:**"),
    "E0201",
    r,
  );
  assert(!r.stdout.includes("## E0202"), "only one section", r);
  const lower = await vmdesc(["explain", "w0002"]);
  assert(
    lower.code === 0 && lower.stdout.startsWith("## W0002: no serial device"),
    "lower case",
    lower,
  );
  const u = await vmdesc(["explain", "E0299"]);
  assert(u.code === 2 && u.stderr.includes("did you mean E0209"), "unknown code", u);
  const list = await vmdesc(["explain"]);
  assert(
    list.code === 0 && list.stdout.includes("E0201  error    overlapping regions"),
    "list",
    list,
  );
});
