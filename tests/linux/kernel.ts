/**
 * A real Linux kernel for the tests: Debian's cloud kernel, fetched with apt and cached.
 *
 * `linux-image-cloud-amd64` is a metapackage; the kernel is in the versioned package it
 * depends on (e.g. `linux-image-6.1.0-56-cloud-amd64`). That package is downloaded with
 * `apt-get download` (running `apt-get update` first when apt does not know it yet),
 * unpacked with `dpkg-deb -x`, and its `boot/vmlinuz-*` kept in the cache directory:
 * `$VMDESC_KERNEL_CACHE`, else `.cache/kernel/` at the repository root (gitignored).
 * The cache holds the vmlinuz, the few modules of the same package that the nested test
 * bed (tests/nested/) loads to get a `/dev/kvm` inside QEMU (KVM itself, its AMD and Intel
 * backends, irqbypass, qemu_fw_cfg, and tun for TAP devices), the virtio modules the Linux virtio test loads
 * from its initramfs (VIRTIO_MODULES), and a `kernel.json` naming the files, package and
 * version. A cache without all of these modules is fetched again.
 *
 * Run it alone to fill the cache: `deno run -A tests/linux/kernel.ts`.
 */

export interface Kernel {
  /** Absolute path of the cached bzImage (vmlinuz). */
  path: string;
  /** The versioned Debian package, e.g. "linux-image-6.1.0-56-cloud-amd64". */
  package: string;
  /** Its Debian version, e.g. "6.1.192-2". */
  version: string;
  /** Absolute paths of the cached modules by name ("kvm", "kvm-amd", ...): KERNEL_MODULES. */
  modules: Record<KernelModule, string>;
}

/**
 * The modules kept from the package, by name, with their path under lib/modules/<release>/.
 * Enough for KVM on an emulated CPU (irqbypass before kvm, kvm before its backend), for
 * reading QEMU's fw_cfg files from /sys/firmware, for TAP devices (`tun`: the network
 * tests inside the bed), and for a guest to drive virtio devices (VIRTIO_MODULES,
 * NET_MODULES).
 */
export const KERNEL_MODULES = {
  "irqbypass": "kernel/virt/lib/irqbypass.ko",
  "kvm": "kernel/arch/x86/kvm/kvm.ko",
  "kvm-amd": "kernel/arch/x86/kvm/kvm-amd.ko",
  "kvm-intel": "kernel/arch/x86/kvm/kvm-intel.ko",
  "qemu_fw_cfg": "kernel/drivers/firmware/qemu_fw_cfg.ko",
  "virtio": "kernel/drivers/virtio/virtio.ko",
  "virtio_ring": "kernel/drivers/virtio/virtio_ring.ko",
  "virtio_pci_legacy_dev": "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
  "virtio_pci_modern_dev": "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
  "virtio_pci": "kernel/drivers/virtio/virtio_pci.ko",
  "virtio_mmio": "kernel/drivers/virtio/virtio_mmio.ko",
  "virtio_blk": "kernel/drivers/block/virtio_blk.ko",
  "virtio-rng": "kernel/drivers/char/hw_random/virtio-rng.ko",
  "virtio_console": "kernel/drivers/char/virtio_console.ko",
  "tun": "kernel/drivers/net/tun.ko",
  "failover": "kernel/net/core/failover.ko",
  "net_failover": "kernel/drivers/net/net_failover.ko",
  "virtio_net": "kernel/drivers/net/virtio_net.ko",
} as const;
export type KernelModule = keyof typeof KERNEL_MODULES;
/**
 * The virtio core and both transports in an order `insmod` accepts (each after the modules
 * it needs: the Debian kernel builds none of them in).
 */
export const VIRTIO_TRANSPORT_MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_pci",
  "virtio_mmio",
] as const satisfies readonly KernelModule[];
/** The transports and the block, entropy and console drivers, in an order `insmod` accepts. */
export const VIRTIO_MODULES = [
  ...VIRTIO_TRANSPORT_MODULES,
  "virtio_blk",
  "virtio-rng",
  "virtio_console",
] as const satisfies readonly KernelModule[];
/**
 * virtio_net and what it needs beyond VIRTIO_MODULES, in an order `insmod` accepts
 * (`depends=` of each .ko: virtio_net needs virtio, virtio_ring and net_failover, which
 * needs failover).
 */
export const NET_MODULES = [
  "failover",
  "net_failover",
  "virtio_net",
] as const satisfies readonly KernelModule[];
const MODULE_NAMES = Object.keys(KERNEL_MODULES) as KernelModule[];

export type KernelResult = { kernel: Kernel } | { skip: string };

const META = "linux-image-cloud-amd64";
const ROOT = new URL("../../", import.meta.url).pathname;

export function cacheDir(): string {
  return Deno.env.get("VMDESC_KERNEL_CACHE") ?? `${ROOT}.cache/kernel`;
}

async function sh(cmd: string, args: string[], cwd?: string) {
  try {
    const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
    const dec = new TextDecoder();
    return { ok: out.success, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

const nonEmptyFile = async (path: string) => {
  const st = await Deno.stat(path);
  return st.isFile && st.size > 0;
};

async function readCached(dir: string): Promise<Kernel | null> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/kernel.json`));
    const path = `${dir}/${meta.file}`;
    if (!await nonEmptyFile(path) || typeof meta.modules !== "object") return null;
    const modules = {} as Record<KernelModule, string>;
    for (const name of MODULE_NAMES) {
      if (typeof meta.modules[name] !== "string") return null;
      modules[name] = `${dir}/${meta.modules[name]}`;
      if (!await nonEmptyFile(modules[name])) return null;
    }
    return { path, package: meta.package, version: meta.version, modules };
  } catch {
    return null;
  }
}

/** The versioned image package the metapackage depends on. */
async function versionedPackage(): Promise<string | null> {
  const r = await sh("apt-cache", ["depends", META]);
  if (!r.ok) return null;
  const m = r.out.match(/Depends:\s*(linux-image-[^\s]+-cloud-amd64)/);
  return m ? m[1] : null;
}

async function fetchKernel(dir: string): Promise<KernelResult> {
  let pkg = await versionedPackage();
  if (pkg === null) {
    // apt may not have package lists yet (a fresh machine): fetch them once.
    const up = await sh("apt-get", ["update", "-qq"]);
    if (!up.ok) return { skip: `apt-get update failed: ${up.err.trim().split("\n").pop()}` };
    pkg = await versionedPackage();
    if (pkg === null) return { skip: `apt does not know ${META}` };
  }
  const tmp = await Deno.makeTempDir({ prefix: "vmdesc-kernel-" });
  try {
    // Download as root without apt's sandbox user, which cannot write to our temp dir.
    const download = (name: string) =>
      sh("apt-get", ["download", "-o", "APT::Sandbox::User=root", name], tmp);
    let dl = await download(pkg);
    if (!dl.ok) {
      // Stale package lists name a version the archive no longer has: refresh once.
      await sh("apt-get", ["update", "-qq"]);
      pkg = (await versionedPackage()) ?? pkg;
      dl = await download(pkg);
    }
    if (!dl.ok) {
      return { skip: `apt-get download ${pkg} failed: ${dl.err.trim().split("\n").pop()}` };
    }
    const deb = [...Deno.readDirSync(tmp)].find((e) => e.name.endsWith(".deb"))?.name;
    if (!deb) return { skip: `apt-get download ${pkg} produced no .deb` };
    const version = decodeURIComponent(deb.split("_")[1] ?? "unknown");
    // Only boot/ and a few modules are needed: unpacking all modules takes most of the time.
    await Deno.mkdir(`${tmp}/x`);
    const x = await sh("sh", [
      "-c",
      `dpkg-deb --fsys-tarfile "$1" | tar -x -C x --wildcards './boot/vmlinuz-*' ` +
      MODULE_NAMES.map((m) => `'./lib/modules/*/${KERNEL_MODULES[m]}'`).join(" "),
      "sh",
      deb,
    ], tmp);
    if (!x.ok) throw new Error(`unpacking ${deb} failed: ${x.err}`);
    const vmlinuz = [...Deno.readDirSync(`${tmp}/x/boot`)].find((e) =>
      e.name.startsWith("vmlinuz-")
    )
      ?.name;
    if (!vmlinuz) throw new Error(`${deb} has no boot/vmlinuz-*`);
    const release = vmlinuz.slice("vmlinuz-".length);
    await Deno.mkdir(`${dir}/modules/${release}`, { recursive: true });
    // Copy then rename, so an interrupted run never leaves half a file in the cache; the
    // kernel.json written last is what makes the new files count.
    const keep = async (from: string, to: string) => {
      await Deno.copyFile(from, `${to}.part`);
      await Deno.rename(`${to}.part`, to);
    };
    const moduleFiles = {} as Record<KernelModule, string>;
    for (const name of MODULE_NAMES) {
      const file = `modules/${release}/${name}.ko`;
      await keep(`${tmp}/x/lib/modules/${release}/${KERNEL_MODULES[name]}`, `${dir}/${file}`);
      moduleFiles[name] = file;
    }
    const path = `${dir}/${vmlinuz}`;
    await keep(`${tmp}/x/boot/${vmlinuz}`, path);
    const modules = Object.fromEntries(
      MODULE_NAMES.map((n) => [n, `${dir}/${moduleFiles[n]}`]),
    ) as Record<KernelModule, string>;
    const kernel: Kernel = { path, package: pkg, version, modules };
    const meta = { file: vmlinuz, package: pkg, version, modules: moduleFiles };
    await Deno.writeTextFile(`${dir}/kernel.json.part`, JSON.stringify(meta, null, 2) + "\n");
    await Deno.rename(`${dir}/kernel.json.part`, `${dir}/kernel.json`);
    return { kernel };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

let pending: Promise<KernelResult> | null = null;

/** The cached kernel, fetching it on first use; `skip` says why there is none. */
export function ensureKernel(): Promise<KernelResult> {
  pending ??= (async () => {
    const dir = cacheDir();
    const cached = await readCached(dir);
    if (cached) return { kernel: cached };
    const have = await sh("sh", ["-c", "command -v apt-get && command -v dpkg-deb"]);
    if (!have.ok) return { skip: "apt-get/dpkg-deb not available: cannot fetch a Debian kernel" };
    return await fetchKernel(dir);
  })();
  return pending;
}

if (import.meta.main) {
  const r = await ensureKernel();
  if ("skip" in r) {
    console.log(`no kernel: ${r.skip}`);
    Deno.exit(1);
  }
  console.log(`${r.kernel.package} ${r.kernel.version}: ${r.kernel.path}`);
}
