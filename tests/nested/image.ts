/**
 * The bed's root file system: a compressed newc initramfs built from the current work tree
 * (committed or not) and the host's own programs, cached by a hash of what goes in.
 *
 * What it holds (every host path at its own absolute path; the bed's own files in /bed/):
 * - the project: `git ls-files --cached --others --exclude-standard` (tracked and new files,
 *   not ignored ones, not deleted ones) plus the test guests, which git ignores, built first
 *   with gcc so nothing inside needs a compiler;
 * - the `deno` running this code and the glibc libraries `ldd` names, and the npm packages
 *   of the project's deno.lock from the Deno cache (DENO_DIR), so nothing needs a network;
 * - busybox-static (the init's shell and mount, insmod, poweroff) and the tools the tests
 *   spawn, with their libraries, where the host has them (TEST_TOOLS);
 * - the kvm modules of Debian's cloud kernel (tests/linux/kernel.ts), and the init script;
 * - on request: more host paths (`include`, e.g. `.cache/kernel` for a kernel to boot inside),
 *   more tools, and QEMU (`withQemu`: the binary, its libraries and its firmware path,
 *   `-L help`: /usr/share/qemu, where it finds `bios-microvm.bin`, and on Debian seabios and
 *   ipxe's option ROMs).
 *
 * The image is `.cache/nested/images/<hash>.cpio.lz4` (`.gz` without lz4); the hash covers every entry's path,
 * type, mode and content (the host's programs by size, mtime and inode), so an unchanged
 * tree reuses the image and any edit makes a new one. Project files get a fixed mtime and
 * the built guests a later one: the guests stay up to date inside whatever the host clock.
 */
import { BUILD_DIR, buildGuests } from "../../examples/guests/build.ts";
import { ensureKernel, type Kernel, KERNEL_MODULES } from "../linux/kernel.ts";
import { CpioWriter } from "./cpio.ts";
import { type Entry, ImageTree, normalize, whichSync } from "./host_files.ts";

/** The project root (this file is tests/nested/image.ts). */
export const PROJECT_ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname)
  .replace(/\/$/, "");
export const CACHE_DIR = `${PROJECT_ROOT}/.cache/nested`;

/** Bumped when the layout of the image changes, so old images are not reused. */
const FORMAT = "vmdesc-bed-1";

/**
 * Programs the tests spawn (besides deno), carried when the host has them: bash (the
 * caller-thread tests), objcopy (machine and ELF tests), setpriv (E1002 as root), script
 * (tests under a pseudo-terminal), the coreutils the tests and shells call, lz4,
 * acpica's iasl/acpiexec, iproute2's ip and iputils' ping (the network tests: their
 * namespaces, TAP devices and pings), and curl (the control API's client in tests/api/). gcc is not carried (its tree is far larger than all of this):
 * the guests are built before packing.
 */
export const TEST_TOOLS = [
  "sh",
  "bash",
  "env",
  "mkfifo",
  "mknod",
  "objcopy",
  "setpriv",
  "script",
  "lz4",
  "iasl",
  "acpiexec",
  "ip",
  "ping",
  "curl",
];

export interface ImageOptions {
  /**
   * More host files or directories to carry, at their own absolute paths (relative paths
   * are taken from the project root): e.g. ".cache/kernel" for the kernel cache.
   */
  include?: string[];
  /** More programs (names on PATH, or paths) to carry with their libraries. */
  tools?: string[];
  /** Carry qemu-system-x86_64, its libraries and /usr/share/qemu (firmware). */
  withQemu?: boolean;
  /** Progress lines ("[bed] ..."); default: none. */
  log?: (line: string) => void;
}

export interface BedImage {
  /** The cached image file. */
  path: string;
  /** Hex SHA-256 over the entries (the file's name). */
  hash: string;
  /** Size of the compressed image in bytes. */
  bytes: number;
  /** False when the cached image was reused. */
  built: boolean;
  /** Seconds spent collecting, hashing and (when built) writing. */
  seconds: number;
  /** The kernel to boot it with (same package as the modules inside). */
  kernel: Kernel;
  /** Programs asked for (TEST_TOOLS, `tools`) that the host does not have. */
  missingTools: string[];
}

/** Paths inside the image that the init script reads (written into /bed/image.env). */
export const BED = {
  busybox: "/bed/busybox",
  applets: "/bed/busybox-bin",
  bin: "/bed/bin",
  modules: "/bed/modules",
  env: "/bed/image.env",
} as const;

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const o = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!o.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(o.stderr)}`);
  }
  return new TextDecoder().decode(o.stdout);
}

/** Tracked and untracked (not ignored) files of the work tree that exist now. */
async function projectFiles(): Promise<string[]> {
  const out = await run("git", [
    "ls-files",
    "-z",
    "--cached",
    "--others",
    "--exclude-standard",
  ], PROJECT_ROOT);
  return [...new Set(out.split("\0").filter(Boolean))].sort();
}

/** The Deno cache directory this deno uses (`deno info --json`). */
async function denoDir(): Promise<string> {
  const info = JSON.parse(await run(Deno.execPath(), ["info", "--json"]));
  return info.denoDir;
}

/**
 * npm/registry.npmjs.org/<name>/<version> for each package in deno.lock (the package's
 * registry.json beside it is carried too where the cache has one: deno writes it when it
 * resolved a version itself, not when the lockfile named it).
 */
function npmCachePaths(dir: string): string[] {
  const lock = JSON.parse(Deno.readTextFileSync(`${PROJECT_ROOT}/deno.lock`));
  const paths: string[] = [];
  for (const key of Object.keys(lock.npm ?? {})) {
    // "name@1.0.0", "@scope/name@1.0.0", "name@1.0.0_peer@2.0.0": the name ends at the
    // first "@" after its first character; peers after "_" share the package's folder.
    const at = key.indexOf("@", 1);
    const name = key.slice(0, at);
    const version = key.slice(at + 1).split("_")[0];
    const base = `${dir}/npm/registry.npmjs.org/${name}`;
    paths.push(`${base}/${version}`);
  }
  return paths;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function initScript(): Uint8Array {
  return Deno.readFileSync(new URL("./init.sh", import.meta.url));
}

/** Collects every entry of the image (no file is read yet except small ones). */
async function collect(opts: ImageOptions, kernel: Kernel) {
  const tree = new ImageTree();
  const missingTools: string[] = [];
  for (const d of ["/proc", "/sys", "/dev", "/run", "/mnt", "/root"]) tree.dir(d);
  // /var/run -> /run, as on Debian (iproute2 builds name /run/netns or /var/run/netns).
  tree.set("/var/run", { kind: "symlink", target: "../run" });
  tree.dir("/tmp", 0o1777);
  tree.set("/dev/console", { kind: "device", major: 5, minor: 1, mode: 0o600 });
  tree.data("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  tree.data("/etc/group", "root:x:0:\n");
  tree.data("/etc/hostname", "vmdesc-bed\n");
  tree.addHostPath("/etc/ld.so.cache", "stat");

  // busybox: the init's shell and tools, its applets on PATH after the host's programs.
  const busybox = whichSync("busybox") ?? "/bin/busybox";
  const bb = Deno.realPathSync(busybox);
  const bbInfo = Deno.statSync(bb);
  tree.set(BED.busybox, {
    kind: "file",
    mode: 0o755,
    size: bbInfo.size,
    from: bb,
    identity: "stat",
    mtime: Math.floor((bbInfo.mtime?.getTime() ?? 0) / 1000),
  });
  const applets = (await run(bb, ["--list"])).split("\n").filter(Boolean);
  for (const a of applets) {
    tree.set(`${BED.applets}/${a}`, { kind: "symlink", target: "../busybox" });
  }

  // deno and the tools the tests spawn.
  const deno = Deno.execPath();
  await tree.addExecutable(deno);
  tree.set(`${BED.bin}/deno`, { kind: "symlink", target: deno });
  for (const name of [...TEST_TOOLS, ...(opts.tools ?? [])]) {
    const path = whichSync(name);
    if (path === null) missingTools.push(name);
    else await tree.addExecutable(path);
  }
  if (opts.withQemu) {
    const qemu = whichSync("qemu-system-x86_64");
    if (qemu === null) {
      throw new Error(
        "withQemu: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)",
      );
    }
    await tree.addExecutable(qemu);
    // Its firmware search path (`-L help`): /usr/share/qemu, and on Debian also seabios
    // and ipxe's option ROMs (a virtio-net-pci device wants efi-virtio.rom from there).
    const firmware = (await run(qemu, ["-L", "help"])).split("\n").filter(Boolean)
      .map((dir) => normalize(dir));
    for (const dir of firmware) tree.addHostPath(dir, "stat");
    if (!tree.addHostPath("/usr/share/qemu", "stat")) throw new Error("/usr/share/qemu is missing");
  }

  // The Deno cache: only the project's npm packages (the rest of DENO_DIR is live SQLite
  // caches that deno rebuilds inside).
  const dd = await denoDir();
  const cached = () => npmCachePaths(dd).every((p) => exists(p));
  if (!cached()) {
    // A fresh clone: fetch the project's npm packages into the cache (the bed has no network).
    opts.log?.("fetching the project's npm packages into the Deno cache (deno install)");
    await run(Deno.execPath(), ["install"], PROJECT_ROOT);
  }
  for (const p of npmCachePaths(dd)) {
    if (!tree.addHostPath(p, "content")) {
      throw new Error(`${p} is not in the Deno cache (${dd}), even after deno install`);
    }
    tree.addHostPath(p.replace(/[^/]+$/, "registry.json"), "content");
  }

  // The project, with its guests built.
  await buildGuests();
  for (const f of await projectFiles()) {
    const path = `${PROJECT_ROOT}/${f}`;
    tree.addHostPath(path, "content"); // a file deleted but still tracked is simply absent
  }
  tree.addHostPath(BUILD_DIR, "content");
  for (const [path, e] of tree.entries) {
    if (e.kind === "file" && path.startsWith(PROJECT_ROOT + "/")) {
      e.mtime = path.startsWith(BUILD_DIR + "/") ? 2 : 1;
    }
  }

  for (const inc of opts.include ?? []) {
    const path = inc.startsWith("/") ? inc : `${PROJECT_ROOT}/${inc}`;
    if (!tree.addHostPath(path.replace(/\/+$/, ""), "content")) {
      throw new Error(`include: ${path} does not exist`);
    }
  }

  // The kernel's modules and what the init needs to know.
  for (const [name, path] of Object.entries(kernel.modules)) {
    const st = Deno.statSync(path);
    tree.set(`${BED.modules}/${name}.ko`, {
      kind: "file",
      mode: 0o644,
      size: st.size,
      from: path,
      identity: "content",
      mtime: 0,
    });
  }
  tree.data("/init", initScript(), 0o755);
  tree.data(
    BED.env,
    [
      `VMDESC_BED_ROOT='${PROJECT_ROOT}'`,
      `DENO_DIR='${dd}'`,
      `HOME='/root'`,
      `KVM_MODULES='${Object.keys(KERNEL_MODULES).join(" ")}'`,
      "",
    ].join("\n"),
  );
  return { tree, missingTools };
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The hash that names the image: every entry's path, type, mode and content identity. */
async function treeHash(entries: [string, Entry][]): Promise<string> {
  const lines: string[] = [FORMAT];
  for (const [path, e] of entries) {
    switch (e.kind) {
      case "dir":
        lines.push(`d ${path} ${e.mode.toString(8)}`);
        break;
      case "symlink":
        lines.push(`l ${path} ${e.target}`);
        break;
      case "device":
        lines.push(`c ${path} ${e.major}:${e.minor} ${e.mode.toString(8)}`);
        break;
      case "data":
        lines.push(`f ${path} ${e.mode.toString(8)} ${await sha256Hex(e.bytes)}`);
        break;
      case "file": {
        let id: string;
        if (e.identity === "content") id = await sha256Hex(await Deno.readFile(e.from));
        else {
          const st = await Deno.stat(e.from);
          id = `${st.size}:${st.mtime?.getTime()}:${st.ino}`;
        }
        lines.push(`f ${path} ${e.mode.toString(8)} ${e.mtime} ${id}`);
      }
    }
  }
  return await sha256Hex(new TextEncoder().encode(lines.join("\n")));
}

/**
 * How the archive is compressed: lz4 (legacy frame format, which is what the kernel reads)
 * where the host has it, else gzip. Measured with a 117 MiB archive: lz4 -1 packs it in
 * 0.4 s to 66 MiB and the emulated kernel unpacks it in 0.8 s; gzip -1 needs ~2.5 s for
 * 52 MiB and the kernel 2.7 s. (zstd: 2.2 s to unpack.)
 */
function compressor(): { ext: string; command: string } {
  return whichSync("lz4") !== null
    ? { ext: "cpio.lz4", command: "lz4 -l -1 -c -q" }
    : { ext: "cpio.gz", command: "gzip -1 -c" };
}

/** Writes the entries as a newc archive through the compressor into `dest`. */
async function writeImage(entries: [string, Entry][], dest: string, command: string) {
  // The compressor writes the file itself, on the other core while this one reads files.
  const packer = new Deno.Command("sh", {
    args: ["-c", `exec ${command} > "$1"`, "sh", dest],
    stdin: "piped",
  }).spawn();
  const w = packer.stdin.getWriter();
  const cpio = new CpioWriter((bytes) => w.write(bytes));
  let failed: unknown = null;
  try {
    for (const [path, e] of entries) {
      switch (e.kind) {
        case "dir":
          await cpio.directory(path, { mode: e.mode });
          break;
        case "symlink":
          await cpio.symlink(path, e.target);
          break;
        case "device":
          await cpio.characterDevice(path, e.major, e.minor, { mode: e.mode });
          break;
        case "data":
          await cpio.file(path, e.bytes, { mode: e.mode });
          break;
        case "file":
          await cpio.hostFile(path, e.from, e.size, { mode: e.mode, mtime: e.mtime });
      }
    }
    await cpio.finish();
  } catch (e) {
    failed = e;
  }
  await w.close().catch(() => {});
  const status = await packer.status;
  if (failed) throw failed;
  if (!status.success) throw new Error(`${command} failed (status ${status.code})`);
}

/** Removes all but the `keep` most recent images (each is tens of MB). */
async function pruneImages(dir: string, keep: number): Promise<void> {
  const images: { path: string; mtime: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !/^[0-9a-f]{64}\.cpio\.(gz|lz4)$/.test(e.name)) continue;
    const st = await Deno.stat(`${dir}/${e.name}`);
    images.push({ path: `${dir}/${e.name}`, mtime: st.mtime?.getTime() ?? 0 });
  }
  images.sort((a, b) => b.mtime - a.mtime);
  for (const old of images.slice(keep)) await Deno.remove(old.path).catch(() => {});
}

/** The image for the current work tree: reused from the cache, or built. */
export async function buildImage(opts: ImageOptions = {}): Promise<BedImage> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const k = await ensureKernel();
  if ("skip" in k) throw new Error(`no kernel for the bed: ${k.skip}`);
  const { tree, missingTools } = await collect(opts, k.kernel);
  const entries = [...tree.entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  const packer = compressor();
  const hash = await treeHash(entries);
  const dir = `${CACHE_DIR}/images`;
  const path = `${dir}/${hash}.${packer.ext}`;
  let built = false;
  try {
    const st = await Deno.stat(path);
    await Deno.utime(path, new Date(), st.mtime ?? new Date()); // most recently used
  } catch {
    await Deno.mkdir(dir, { recursive: true });
    const part = `${path}.${Deno.pid}.part`;
    try {
      await writeImage(entries, part, packer.command);
      await Deno.rename(part, path);
    } finally {
      await Deno.remove(part).catch(() => {});
    }
    built = true;
    await pruneImages(dir, 3);
  }
  const bytes = (await Deno.stat(path)).size;
  const seconds = (performance.now() - t0) / 1000;
  log(
    `${built ? "built" : "reused"} image ${hash.slice(0, 12)} (${entries.length} entries, ${
      (bytes / 2 ** 20).toFixed(1)
    } MiB) in ${seconds.toFixed(1)} s`,
  );
  if (missingTools.length) log(`not on this host, so not in the bed: ${missingTools.join(", ")}`);
  return { path, hash, bytes, built, seconds, kernel: k.kernel, missingTools };
}
