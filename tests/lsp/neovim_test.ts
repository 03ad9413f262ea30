/**
 * A real editor: Debian's Neovim, headless, with the project's Neovim setup
 * (editors/nvim), talks to `vmdesc lsp`. It must show exactly the diagnostics
 * `vmdesc check` reports (codes and lines), and formatting through the client must
 * leave the buffer equal to `vmdesc fmt`'s output.
 *
 * Skips (with a printed reason) only when `nvim` is not installed. Bounded everywhere:
 * Neovim runs in its own session and the whole group (editor + server) is killed on
 * every path.
 */
import { assert, assertEquals } from "./assert.ts";
import { checkJson, DENO_RUN, FIXTURES, ROOT, vmdescFmt } from "./helpers.ts";
import { skipReason, which } from "../skip.ts";

const skip = skipReason("neovim test", { tools: ["nvim"] });
const nvim = which("nvim");
const setsid = which("setsid");

const MESSY = `let  ram=128 MiB
machine m{memory ram
   boot pvh "x.elf"
 device serial com1{port 0x3f8 irq 4}
  pci 00:02.0   virtio_rng}
`;

/**
 * Opens the fixtures in headless Neovim with the project's setup; `serverCmd` null means
 * the setup's default (`vmdesc lsp --stdio` found on `path`).
 */
async function throughNeovim(serverCmd: string[] | null, path?: string) {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-nvim-" });
  let child: Deno.ChildProcess | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const errorsFile = `${dir}/errors.vmdesc`;
    const messyFile = `${dir}/messy.vmdesc`;
    await Deno.copyFile(`${FIXTURES}/errors.vmdesc`, errorsFile);
    await Deno.writeTextFile(messyFile, MESSY);
    const out = `${dir}/result.txt`;
    const args = ["--headless", "--clean", "-u", `${ROOT}/tests/lsp/nvim_driver.lua`];
    // Its own session, so the editor and the server it starts die together.
    child = new Deno.Command(setsid ?? nvim!, {
      args: setsid ? [nvim!, ...args] : args,
      cwd: dir,
      env: {
        // The rest of the environment stays (Deno's caches, certificates, proxies).
        ...(path !== undefined ? { PATH: path } : {}),
        VMDESC_ROOT: ROOT,
        VMDESC_OUT: out,
        VMDESC_ERRORS_FILE: errorsFile,
        VMDESC_MESSY_FILE: messyFile,
        VMDESC_LSP_CMD_JSON: serverCmd ? JSON.stringify(serverCmd) : "",
        XDG_STATE_HOME: dir,
        XDG_DATA_HOME: dir,
        XDG_CACHE_HOME: dir,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timedOut = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), 90_000);
    });
    const result = await Promise.race([child.output(), timedOut]);
    if (result === "timeout") throw new Error("nvim did not finish within 90 s");
    const report = await Deno.readTextFile(out).catch(() => "(no result file)");
    assertEquals(
      result.code,
      0,
      `nvim exit status; report:\n${report}\n${new TextDecoder().decode(result.stderr)}`,
    );

    const lines = report.split("\n");
    assertEquals(lines[0], "filetype vmdesc");
    const got = lines.filter((l) => l.startsWith("diag ")).map((l) => {
      const [, code, line] = l.split(" ");
      return `${code}:${line}`;
    }).sort();
    const want = (await checkJson(errorsFile)).map((d) => `${d.code}:${d.range!.start.line + 1}`)
      .sort();
    assert(want.length >= 4, "the fixture has several known problems");
    assertEquals(got, want);

    const begin = lines.indexOf("formatted-begin");
    const end = lines.indexOf("formatted-end");
    assert(begin >= 0 && end > begin, `formatting result missing:\n${report}`);
    const buffer = lines.slice(begin + 1, end).join("\n") + "\n";
    const fmt = await vmdescFmt(MESSY);
    assertEquals(fmt.code, 0);
    assertEquals(buffer, fmt.text);
  } finally {
    clearTimeout(timer);
    if (child) {
      try {
        // The whole session: nvim and the language server it spawned.
        Deno.kill(setsid ? -child.pid : child.pid, "SIGKILL");
      } catch { /* already gone */ }
      await child.status.catch(() => {});
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "neovim: diagnostics and formatting through the real editor",
  ignore: skip !== null,
  async fn() {
    await throughNeovim([
      Deno.execPath(),
      ...DENO_RUN,
      `${ROOT}/cli/vmdesc.ts`,
      "lsp",
      "--stdio",
    ]);
  },
});

Deno.test({
  name: "neovim: the setup's defaults work with the installed vmdesc (deno task install)",
  ignore: skip !== null,
  async fn() {
    const { installVmdesc } = await import("../util/install.ts");
    const root = await installVmdesc();
    try {
      // No server command configured, no deno on PATH: only the installed `vmdesc`.
      await throughNeovim(null, `${root}/bin:/usr/bin:/bin`);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
