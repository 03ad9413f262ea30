/**
 * `vmdesc check DIR` on a folder where a constants-only file is imported by another: the
 * imported file is a library, checked as one (issue 14, item 5): no E0404 "defines no
 * machine", no W0005 for constants its importers use; the folder checks clean.
 */
const root = new URL("../", import.meta.url).pathname;

Deno.test("check DIR: files imported by others are libraries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-libs-" });
  try {
    await Deno.mkdir(`${dir}/lib`);
    await Deno.writeTextFile(`${dir}/lib/consts.vmdesc`, "let ram = 64 MiB\nlet com1 = 0x3f8\n");
    await Deno.writeTextFile(
      `${dir}/micro.vmdesc`,
      'import "lib/consts.vmdesc"\nmachine micro {\n  memory ram\n  device serial com1 { port com1 }\n  boot pvh "g.elf"\n}\n',
    );
    await Deno.writeTextFile(`${dir}/g.elf`, "");
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}cli/vmdesc.ts`, "check", "--format", "json", "."],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    const report = JSON.parse(out);
    if (r.code !== 0 || report.diagnostics.length !== 0 || report.files.length !== 2) {
      throw new Error(`exit ${r.code}:\n${out}${new TextDecoder().decode(r.stderr)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
