/** `deno task install --root DIR` into a fresh DIR, as the README says (for the tests). */
import { denoTask, ROOT } from "./cli.ts";

/** Installs into a fresh root, as the README says; returns the root. */
export async function installVmdesc(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "vmdesc-install-" });
  const r = await denoTask("install", ["--root", root], ROOT);
  if (r.code !== 0 || !r.stdout.includes(`installed ${root}/bin/vmdesc`)) {
    throw new Error(`deno task install failed:\n${r.stdout}\n${r.stderr}`);
  }
  return root;
}
