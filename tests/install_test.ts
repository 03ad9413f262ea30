/**
 * The install line of the README: `deno task install --root DIR` puts a `vmdesc` command in
 * DIR/bin that works from any directory, with the npm-provided Deno and no `deno` on PATH,
 * with the task's V8 flags and permissions (it boots a guest, which needs --allow-ffi).
 */
import { taskFlags } from "../bin/install.ts";
import { kvmMissing } from "./kvm.ts";
import { installVmdesc } from "./util/install.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) } as Run;
}

const show = (r: Run) => `[exit ${r.code}]\n${r.stdout}\n${r.stderr}`;

Deno.test("install: vmdesc on PATH works from another directory, with the task's flags", async () => {
  const root = await installVmdesc();
  const elsewhere = await Deno.makeTempDir({ prefix: "vmdesc-elsewhere-" });
  try {
    const launcher = await Deno.readTextFile(`${root}/bin/vmdesc`);
    const flags = taskFlags(await Deno.readTextFile(`${ROOT}/deno.json`));
    assert(flags.includes("--v8-flags=--no-lazy") && flags.includes("--allow-ffi"), "task flags");
    for (const f of flags) assert(launcher.includes(`'${f}'`), `launcher passes ${f}`);

    // No `deno` on PATH: only the launcher's own directory and the system's.
    const env = { PATH: `${root}/bin:/usr/bin:/bin`, HOME: Deno.env.get("HOME") ?? "/root" };
    const which = await run("sh", ["-c", "command -v deno || echo none"], elsewhere, env);
    assert(which.stdout.trim() === "none", "the test runs without deno on PATH");

    const version = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).version;
    const v = await run("vmdesc", ["--version"], elsewhere, env);
    assert(v.code === 0 && v.stdout === `vmdesc ${version}\n`, show(v));

    const hello = await Deno.readTextFile(`${ROOT}/examples/hello.vmdesc`);
    await Deno.writeTextFile(`${elsewhere}/micro.vmdesc`, hello);
    const named = await run(
      "vmdesc",
      ["check", "--format", "json", "micro.vmdesc"],
      elsewhere,
      env,
    );
    assert(
      named.code === 0 && JSON.parse(named.stdout).files[0].path === "micro.vmdesc",
      show(named),
    );
    const here = await run("vmdesc", ["check", "--format", "json"], elsewhere, env);
    assert(here.code === 0 && JSON.parse(here.stdout).files.length === 1, show(here));

    if (kvmMissing() === null) {
      // FFI, /dev/kvm and the guest: the permissions of the task, through the launcher.
      const { buildGuests } = await import("../examples/guests/build.ts");
      await buildGuests(["hello"]);
      const b = await run("vmdesc", ["boot", `${ROOT}/examples/hello.vmdesc`], elsewhere, env);
      assert(b.code === 0 && b.stdout === "Hello from vmdesc guest\n", show(b));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});
