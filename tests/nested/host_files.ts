/**
 * Host files as the bed's root file system sees them: a map from image path to entry,
 * filled from host paths that keep their absolute path inside the image.
 *
 * A host path is walked component by component, so a symlink anywhere on the way
 * (Debian's merged /usr: `/lib -> usr/lib`, `/bin/sh -> dash`) becomes the same symlink
 * in the image and the file it names is carried too. Executables bring the shared
 * libraries `ldd` names, at their paths (and the dynamic loader).
 */

export type Entry =
  | { kind: "dir"; mode: number }
  | { kind: "symlink"; target: string }
  | { kind: "device"; major: number; minor: number; mode: number }
  | {
    kind: "file";
    mode: number;
    size: number;
    /** Host file to copy. */
    from: string;
    /**
     * How the image hash knows this file: its content (project files, caches, what the
     * caller includes) or, for the host's own programs and libraries, which change only
     * when a package is upgraded, their size, mtime and inode.
     */
    identity: "content" | "stat";
    mtime: number;
  }
  | { kind: "data"; mode: number; bytes: Uint8Array };

export class ImageTree {
  readonly entries = new Map<string, Entry>();

  /** Adds `path`'s parent directories (as directories unless already present). */
  #parents(path: string): void {
    const parts = path.split("/").filter(Boolean);
    let at = "";
    for (let i = 0; i < parts.length - 1; i++) {
      at += "/" + parts[i];
      if (!this.entries.has(at)) this.entries.set(at, { kind: "dir", mode: 0o755 });
    }
  }

  set(path: string, entry: Entry): void {
    this.#parents(path);
    this.entries.set(path, entry);
  }

  dir(path: string, mode = 0o755): void {
    this.set(path, { kind: "dir", mode });
  }

  data(path: string, text: string | Uint8Array, mode = 0o644): void {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    this.set(path, { kind: "data", mode, bytes });
  }

  /**
   * Carries a host file, directory (recursively) or symlink at its own absolute path,
   * with every symlink on the way. Returns false when the path does not exist.
   */
  addHostPath(path: string, identity: "content" | "stat", seen = new Set<string>()): boolean {
    const parts = path.split("/").filter(Boolean);
    let at = "";
    for (let i = 0; i < parts.length; i++) {
      at += "/" + parts[i];
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(at);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return false;
        throw e;
      }
      if (st.isSymlink) {
        const target = Deno.readLinkSync(at);
        this.set(at, { kind: "symlink", target });
        const resolved = target.startsWith("/") ? target : `${dirOf(at)}/${target}`;
        const rest = parts.slice(i + 1).join("/");
        const next = normalize(rest ? `${resolved}/${rest}` : resolved);
        if (seen.has(next)) return true; // a symlink loop: keep the links, stop here
        seen.add(next);
        return this.addHostPath(next, identity, seen);
      }
      if (i < parts.length - 1) {
        if (!this.entries.has(at)) this.set(at, { kind: "dir", mode: (st.mode ?? 0o755) & 0o7777 });
        continue;
      }
      if (st.isDirectory) {
        this.set(at, { kind: "dir", mode: (st.mode ?? 0o755) & 0o7777 });
        for (const e of [...Deno.readDirSync(at)].sort((a, b) => a.name < b.name ? -1 : 1)) {
          this.addHostPath(`${at}/${e.name}`, identity, seen);
        }
      } else if (st.isFile) {
        this.set(at, {
          kind: "file",
          mode: (st.mode ?? 0o644) & 0o7777,
          size: st.size,
          from: at,
          identity,
          mtime: identity === "stat" ? Math.floor((st.mtime?.getTime() ?? 0) / 1000) : 0,
        });
      }
      // Sockets, fifos and device nodes are not carried.
    }
    return true;
  }

  /** An executable and the shared libraries it loads. */
  async addExecutable(path: string): Promise<void> {
    if (!this.addHostPath(path, "stat")) throw new Error(`${path} does not exist`);
    for (const lib of await sharedLibraries(path)) this.addHostPath(lib, "stat");
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "" : path.slice(0, i);
}

/** Resolves "." and ".." in an absolute path without touching the file system. */
export function normalize(path: string): string {
  const out: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") out.pop();
    else out.push(p);
  }
  return "/" + out.join("/");
}

/** The absolute paths of the libraries `ldd` lists for an executable (none if static). */
export async function sharedLibraries(executable: string): Promise<string[]> {
  const o = await new Deno.Command("ldd", { args: [executable], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(o.stdout);
  // "not a dynamic executable" (stderr, status 1): a static binary such as busybox-static.
  if (!o.success) return [];
  const libs: string[] = [];
  for (const line of text.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = line.match(/=>\s*(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (m) libs.push(m[1]);
    else if (/not found/.test(line)) {
      throw new Error(`${executable}: ldd cannot find ${line.trim()}`);
    }
  }
  return libs;
}

/** The full path of a command on PATH, or null (what `command -v` answers). */
export function whichSync(name: string, path = Deno.env.get("PATH") ?? ""): string | null {
  if (name.includes("/")) return name;
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const st = Deno.statSync(`${dir}/${name}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return `${dir}/${name}`;
    } catch {
      // not in this directory
    }
  }
  return null;
}
