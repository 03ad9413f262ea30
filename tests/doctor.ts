/**
 * Runs `vmdesc doctor` as users run it: through the `vmdesc` task's own Deno flags (read
 * from deno.json, so a check that needs more permission than the task grants shows up
 * here), optionally inside a mount namespace where /dev is replaced.
 */
import { taskFlags } from "../bin/install.ts";

export const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** `deno run <the vmdesc task's flags> cli/vmdesc.ts`, as argv after the deno binary. */
export function vmdescArgs(): string[] {
  return ["run", ...taskFlags(Deno.readTextFileSync(`${ROOT}deno.json`)), "cli/vmdesc.ts"];
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[]): Promise<Result> {
  const o = await new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: o.code, stdout: d.decode(o.stdout), stderr: d.decode(o.stderr) };
}

/** `vmdesc doctor ARGS` on this host. */
export function doctor(args: string[] = []): Promise<Result> {
  return run(Deno.execPath(), [...vmdescArgs(), "doctor", ...args]);
}

/**
 * `vmdesc doctor ARGS` in a private mount namespace (a user namespace too, so root is not
 * needed) whose /dev is a fresh tmpfs with only null, zero, random and urandom bound in:
 * a host without /dev/kvm, for real. With `kvmNode: "unreadable"`, /dev/kvm is a file of
 * mode 000 instead, and the doctor runs with every capability dropped (setpriv), so even
 * root is refused: a /dev/kvm the user may not open.
 */
export function doctorWithoutKvm(
  args: string[] = [],
  opts: { kvmNode?: "absent" | "unreadable" } = {},
): Promise<Result> {
  const script = `
set -e
old=$(mktemp -d)
mount --rbind /dev "$old"
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero random urandom; do touch /dev/$n; mount --bind "$old/$n" /dev/$n; done
umount -l "$old"; rmdir "$old"
if [ "$1" = unreadable ]; then
  touch /dev/kvm; chmod 000 /dev/kvm
  shift
  exec setpriv --inh-caps=-all --bounding-set=-all "$@"
fi
shift
exec "$@"
`;
  return run("unshare", [
    "--mount",
    "--map-root-user",
    "--propagation",
    "private",
    "sh",
    "-c",
    script,
    "sh",
    opts.kvmNode ?? "absent",
    Deno.execPath(),
    ...vmdescArgs(),
    "doctor",
    ...args,
  ]);
}
