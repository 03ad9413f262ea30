/** `deno task install --root DIR` into a fresh DIR, as the README says (for the tests). */
const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Installs into a fresh root, as the README says; returns the root. */
export async function installVmdesc(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "vmdesc-install-" });
  const out = await new Deno.Command("env", {
    args: [
      "-u",
      "INIT_CWD",
      "-u",
      "VMDESC_INIT_CWD",
      Deno.execPath(),
      "task",
      "-q",
      "install",
      "--root",
      root,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0 || !text.includes(`installed ${root}/bin/vmdesc`)) {
    throw new Error(`deno task install failed:\n${text}\n${new TextDecoder().decode(out.stderr)}`);
  }
  return root;
}
