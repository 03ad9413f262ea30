/**
 * The one place that decides whether a test may be skipped, and says why.
 *
 * A test file states what it needs; `skipReason` answers null (run it) or a reason, and
 * prints the reason as one line that CI reads:
 *
 *     skip [kvm] runtime machine tests: /dev/kvm is absent on this host
 *     skip [tool] lz4 round trip: `lz4` is not installed (apt-get install lz4)
 *     skip [left-out] linux bzImage boot: VMDESC_SKIP_BZIMAGE=1
 *
 * Kinds: `kvm` (no /dev/kvm), `tool` (a program the test runs is not on PATH), `file` (a
 * file it reads, such as <linux/kvm.h>), `kernel` (Debian's kernel cannot be fetched),
 * `left-out` (left out on purpose by an environment variable, `optOut`). `.ci/run` installs
 * every tool and runs the KVM tests natively or inside the nested test bed, so in CI any
 * skip is a part of the suite that did not run, and fails it.
 *
 * Anything else that stops a test from looking (most often a runner started without
 * --allow-all, which Deno needs for /dev) is an error, never a skip: a misconfigured run
 * cannot pass by skipping every test that boots a guest.
 */
import { ensureKernel, type Kernel } from "./linux/kernel.ts";

export type SkipKind = "kvm" | "tool" | "file" | "kernel" | "left-out";

export interface Needs {
  /** A /dev/kvm. */
  kvm?: boolean;
  /**
   * A KVM that runs Linux as far as userspace. The software KVM some of this project's
   * hosts have (`kvm_pvm`) emulates guest instructions and stops Linux in early boot (at
   * `lock cmpxchg16b`); there `.ci/run` runs these tests inside the nested test bed.
   */
  linux?: boolean;
  /** Programs run by the test, looked up on PATH. */
  tools?: string[];
  /** Files read by the test (absolute paths). */
  files?: string[];
  /** An environment variable that leaves this test out when it is "1". */
  optOut?: string;
}

/** The Debian package of each tool the tests run, for the hint. */
const PACKAGES: Record<string, string> = {
  gcc: "gcc",
  objcopy: "binutils",
  nvim: "neovim",
  iasl: "acpica-tools",
  acpiexec: "acpica-tools",
  lz4: "lz4",
  script: "bsdutils",
  setpriv: "util-linux",
  setsid: "util-linux",
  unshare: "util-linux",
  mknod: "coreutils",
  mkfifo: "coreutils",
  bash: "bash",
  fish: "fish",
  zsh: "zsh",
  busybox: "busybox-static",
  "qemu-system-x86_64": "qemu-system-x86",
  ip: "iproute2",
  ping: "iputils-ping",
};

const FILE_PACKAGES: Record<string, string> = {
  "/usr/include/linux/kvm.h": "linux-libc-dev",
  "/bin/busybox": "busybox-static",
};

/** The full path of a program on PATH, or null. */
export function which(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const st = Deno.statSync(`${dir}/${name}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return `${dir}/${name}`;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) throw e;
    }
  }
  return null;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Why KVM tests cannot run here (no /dev/kvm), or null; prints nothing. */
export function kvmAbsent(): string | null {
  return exists("/dev/kvm") ? null : "/dev/kvm is absent on this host";
}

/** Why Linux cannot reach userspace on this host's KVM, or null; prints nothing. */
export function linuxKvmAbsent(): string | null {
  return kvmAbsent() ??
    (exists("/sys/module/kvm_pvm")
      ? "this host's /dev/kvm is kvm_pvm, a software KVM that stops Linux in early boot " +
        "(.ci/run runs these tests in the nested test bed)"
      : null);
}

function decide(needs: Needs): { kind: SkipKind; why: string } | null {
  if (needs.optOut && Deno.env.get(needs.optOut) === "1") {
    return { kind: "left-out", why: `${needs.optOut}=1` };
  }
  if (needs.kvm || needs.linux) {
    const why = needs.linux ? linuxKvmAbsent() : kvmAbsent();
    if (why) return { kind: "kvm", why };
  }
  for (const tool of needs.tools ?? []) {
    if (which(tool) === null) {
      const pkg = PACKAGES[tool];
      return {
        kind: "tool",
        why: `\`${tool}\` is not installed${pkg ? ` (apt-get install ${pkg})` : ""}`,
      };
    }
  }
  for (const file of needs.files ?? []) {
    if (!exists(file)) {
      const pkg = FILE_PACKAGES[file];
      return { kind: "file", why: `${file} is absent${pkg ? ` (apt-get install ${pkg})` : ""}` };
    }
  }
  return null;
}

function say(kind: SkipKind, what: string, why: string): string {
  console.log(`skip [${kind}] ${what}: ${why}`);
  return why;
}

/**
 * Null when the tests named `what` can run here; otherwise the reason, printed once as
 * `skip [kind] what: reason`. Use it as `ignore: skipReason(...) !== null`.
 */
export function skipReason(what: string, needs: Needs): string | null {
  const d = decide(needs);
  return d ? say(d.kind, what, d.why) : null;
}

/**
 * Debian's cloud kernel for the Linux tests (fetched with apt into `.cache/kernel/` on
 * first use), or the reason the tests named `what` skip: those of `needs` first, then a
 * kernel that cannot be fetched.
 */
export async function kernelOrSkip(
  what: string,
  needs: Needs = {},
): Promise<{ kernel: Kernel; skip: null } | { kernel: null; skip: string }> {
  const d = decide(needs);
  if (d) return { kernel: null, skip: say(d.kind, what, d.why) };
  const r = await ensureKernel();
  if ("skip" in r) return { kernel: null, skip: say("kernel", what, r.skip) };
  return { kernel: r.kernel, skip: null };
}

// `deno run -A tests/skip.ts linux`: exit 0 when this host runs the tests needing `linux`
// natively, else 1 with the reason: `.ci/run` asks here, so the decision stays in one place.
if (import.meta.main) {
  const need = Deno.args[0];
  if (need !== "linux" && need !== "kvm") {
    console.error("usage: deno run -A tests/skip.ts linux|kvm");
    Deno.exit(2);
  }
  const why = need === "linux" ? linuxKvmAbsent() : kvmAbsent();
  if (why) console.log(why);
  Deno.exit(why ? 1 : 0);
}
