/**
 * Builds the example initramfs: Debian's busybox-static, a link to it for each of its
 * applets, /dev/console, and `init` from this folder, as a gzip'd newc cpio archive in
 * examples/linux/initramfs/build/ (gitignored). No other tool is needed: the archive is
 * written by ./cpio.ts and compressed by Deno's CompressionStream.
 *
 *   deno run -A examples/linux/initramfs/build.ts [--busybox PATH] [--out FILE]
 *
 * The busybox must be statically linked (the guest has no C library): Debian's
 * `busybox-static` package installs one at /bin/busybox (`apt-get install busybox-static`).
 * The output is rewritten only when its bytes change, so its mtime says when it changed.
 */
import { type CpioEntry, gzip, newc } from "./cpio.ts";

const HERE = new URL("./", import.meta.url);
const path = (name: string) => decodeURIComponent(new URL(name, HERE).pathname);
export const BUILD_DIR = path("build");
export const INITRAMFS = `${BUILD_DIR}/initramfs.cpio.gz`;
export const INIT_SCRIPT = path("init");
/** Where Debian's busybox-static puts its binary. */
export const DEFAULT_BUSYBOX = "/bin/busybox";

export interface InitramfsOptions {
  /** A statically linked busybox (default $VMDESC_BUSYBOX, else /bin/busybox). */
  busybox?: string;
  /** The .cpio.gz to write (default build/initramfs.cpio.gz beside this file). */
  out?: string;
  /** Another init script (default ./init): a test's own userspace. */
  init?: string;
  /** More entries after the standard ones (kernel modules a test's init loads, say). */
  extra?: readonly CpioEntry[];
}

export interface Initramfs {
  path: string;
  busybox: string;
  applets: number;
  bytes: number;
}

/** A problem the user can fix (no busybox, a dynamic one), with what to do about it. */
export class InitramfsError extends Error {
  constructor(message: string, readonly hint: string) {
    super(message);
    this.name = "InitramfsError";
  }
}

const PT_INTERP = 3;

/** True when the ELF has no program interpreter (it needs no dynamic loader or libc). */
export function isStaticElf(bytes: Uint8Array): boolean {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || dv.getUint32(0) !== 0x7f454c46 || bytes[4] !== 2) return false;
  const phoff = Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phoff + phnum * phentsize > bytes.length) return false;
  for (let i = 0; i < phnum; i++) {
    if (dv.getUint32(phoff + i * phentsize, true) === PT_INTERP) return false;
  }
  return true;
}

async function readBusybox(file: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new InitramfsError(
      `cannot read busybox at ${file}: ${(e as Error).message}`,
      "install Debian's busybox-static (apt-get install busybox-static), or pass --busybox PATH",
    );
  }
  if (!isStaticElf(bytes)) {
    throw new InitramfsError(
      `${file} is not a statically linked x86-64 ELF: the guest has no C library to run it`,
      "install Debian's busybox-static (apt-get install busybox-static), which replaces the dynamic one",
    );
  }
  return bytes;
}

/** The applets busybox was built with (`busybox --list`), for the links in /bin. */
async function applets(busybox: string): Promise<string[]> {
  const out = await new Deno.Command(busybox, { args: ["--list"], stdout: "piped", stderr: "null" })
    .output();
  if (!out.success) {
    throw new InitramfsError(`${busybox} --list failed`, "is it a working busybox binary?");
  }
  return new TextDecoder().decode(out.stdout).split("\n").map((s) => s.trim())
    .filter((s) => /^[A-Za-z0-9_.[\-]+$/.test(s) && s !== "busybox").sort();
}

/** The archive's entries: the directories Linux and init need, busybox and its links, init. */
export function initramfsEntries(
  busybox: Uint8Array,
  appletNames: readonly string[],
  init: Uint8Array,
): CpioEntry[] {
  return [
    ...["bin", "dev", "proc", "sys", "tmp", "root", "etc"].map((d): CpioEntry => ({
      kind: "dir",
      path: d,
      mode: d === "tmp" ? 0o1777 : d === "root" ? 0o700 : 0o755,
    })),
    // The kernel opens /dev/console as init's stdin, stdout and stderr before devtmpfs is
    // mounted: without the node init would run with nowhere to print.
    { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
    { kind: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
    ...appletNames.map((a): CpioEntry => ({
      kind: "symlink",
      path: `bin/${a}`,
      target: "busybox",
    })),
    { kind: "file", path: "init", data: init, mode: 0o755 },
  ];
}

/** Builds (or confirms up to date) the initramfs; returns where it is. */
export async function buildInitramfs(o: InitramfsOptions = {}): Promise<Initramfs> {
  const busyboxPath = o.busybox ?? Deno.env.get("VMDESC_BUSYBOX") ?? DEFAULT_BUSYBOX;
  const out = o.out ?? INITRAMFS;
  const busybox = await readBusybox(busyboxPath);
  const names = await applets(busyboxPath);
  const init = await Deno.readFile(o.init ?? INIT_SCRIPT);
  const bytes = await gzip(newc([...initramfsEntries(busybox, names, init), ...o.extra ?? []]));
  const result = { path: out, busybox: busyboxPath, applets: names.length, bytes: bytes.length };
  try {
    const old = await Deno.readFile(out);
    if (old.length === bytes.length && old.every((b, i) => b === bytes[i])) return result;
  } catch {
    // not built yet
  }
  const dir = out.slice(0, out.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true });
  // Written under a temporary name and renamed: a failed build never leaves half a file.
  const tmp = await Deno.makeTempFile({ dir, prefix: ".initramfs-", suffix: ".part" });
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, out);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return result;
}

if (import.meta.main) {
  const args = [...Deno.args];
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  try {
    const r = await buildInitramfs({ busybox: opt("--busybox"), out: opt("--out") });
    console.log(`${r.path}: ${r.bytes} bytes (busybox ${r.busybox}, ${r.applets} applets)`);
  } catch (e) {
    if (!(e instanceof InitramfsError)) throw e;
    console.error(`error: ${e.message}\n  = help: ${e.hint}`);
    Deno.exit(1);
  }
}
