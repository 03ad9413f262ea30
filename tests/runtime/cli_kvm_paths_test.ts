/**
 * The command-line paths of issue 14 that end in a booted guest, so they need /dev/kvm and
 * live with the other KVM tests (which CI runs in the nested test bed on a host without
 * one): a Plan carrying `$schema` boots, and the installed `vmdesc` launcher boots from
 * another directory with the task's permissions (--allow-ffi).
 */
import { buildGuests } from "../../examples/guests/build.ts";
import { skipReason } from "../skip.ts";
import { installVmdesc } from "../util/install.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const CLI = `${ROOT}/cli/vmdesc.ts`;
const ignore =
  skipReason("command-line boots ($schema Plan, installed launcher)", { kvm: true }) !==
    null;

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

async function run(cmd: string, args: string[], cwd: string, env?: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test({
  name: "cli: a Plan with a $schema key (as editors like) boots like any other",
  ignore,
  async fn() {
    await buildGuests(["hello"]);
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-schema-" });
    try {
      const plan = await run(Deno.execPath(), [
        "run",
        "-A",
        CLI,
        "plan",
        "--format",
        "json",
        "examples/hello.vmdesc",
      ], ROOT);
      const p = JSON.parse(plan.stdout);
      assert(!("$schema" in p), "vmdesc does not write $schema (goldens stay as they are)");
      const file = `${dir}/hello.plan.json`;
      await Deno.writeTextFile(file, JSON.stringify({ $schema: "../../plan/schema.json", ...p }));
      const out = await run(Deno.execPath(), ["run", "-A", CLI, "boot", "--plan", file], ROOT);
      assert(out.code === 0, `boot --plan with $schema: ${out.stderr}`);
      assert(out.stdout === "Hello from vmdesc guest\n", "greeting");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "install: the installed vmdesc boots a guest from another directory (--allow-ffi kept)",
  ignore,
  async fn() {
    await buildGuests(["hello"]);
    const root = await installVmdesc();
    const elsewhere = await Deno.makeTempDir({ prefix: "vmdesc-elsewhere-" });
    try {
      // No `deno` on PATH: only the launcher's own directory and the system's.
      const env = { PATH: `${root}/bin:/usr/bin:/bin`, HOME: Deno.env.get("HOME") ?? "/root" };
      const b = await run("vmdesc", ["boot", `${ROOT}/examples/hello.vmdesc`], elsewhere, env);
      assert(
        b.code === 0 && b.stdout === "Hello from vmdesc guest\n",
        `[exit ${b.code}]\n${b.stdout}\n${b.stderr}`,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(elsewhere, { recursive: true });
    }
  },
});
