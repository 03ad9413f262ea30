/**
 * Where a machine's control socket lives, and claiming that path safely.
 *
 * - A bare name (no `/`: `web1`, `web1.sock`) goes in the user's runtime directory:
 *   `$XDG_RUNTIME_DIR/vmdesc/` when XDG_RUNTIME_DIR is set, else `/tmp/vmdesc-$UID/`;
 *   `.sock` is added when the name has no extension. The directory is created mode 0700
 *   and must belong to the user (a directory another user made in /tmp is refused), so
 *   `vmdesc ps` finds every machine there and no one else can reach them.
 * - Any other path is used as given (relative to the current directory).
 *
 * Claiming a path: nothing there is fine; a socket no server answers on is stale (its
 * vmdesc was killed) and is removed; a socket a live server answers on is refused
 * (E1030), as is anything that is not a socket. The socket is created mode 0600 (the
 * umask is narrowed around the bind, so it never exists with wider permissions).
 */
import { RuntimeError } from "../errors.ts";

/** Longest path a Unix socket address holds (sun_path, with its NUL). */
const SUN_PATH_MAX = 107;

function uid(): number {
  return Deno.uid() ?? 0;
}

/** The directory bare socket names live in, whether or not it exists yet. */
export function runtimeDir(): string {
  const xdg = Deno.env.get("XDG_RUNTIME_DIR");
  return xdg && xdg.startsWith("/") ? `${xdg}/vmdesc` : `/tmp/vmdesc-${uid()}`;
}

/** True when `name` is a bare socket name (it goes in the runtime directory). */
export function isBareName(name: string): boolean {
  return !name.includes("/");
}

/** The socket path `name` stands for: a bare name in the runtime directory, else as given. */
export function socketPath(name: string): string {
  if (!isBareName(name)) return name;
  return `${runtimeDir()}/${name.includes(".") ? name : `${name}.sock`}`;
}

/** Creates the runtime directory (0700) if needed, and checks it is the user's own. */
export function ensureRuntimeDir(): string {
  const dir = runtimeDir();
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw socketError(`cannot create the directory ${dir}: ${(e as Error).message}`);
    }
  }
  const st = Deno.lstatSync(dir);
  if (!st.isDirectory || st.uid !== uid()) {
    throw socketError(
      `${dir} is not a directory of yours`,
      "another user may have created it; give --api-sock a full path instead",
    );
  }
  if ((st.mode! & 0o077) !== 0) Deno.chmodSync(dir, 0o700);
  return dir;
}

function socketError(message: string, hint?: string): RuntimeError {
  return new RuntimeError(
    "E1031",
    `cannot create the control socket: ${message}`,
    hint ?? "check the directory exists and is writable, or choose another path",
  );
}

/** Is a server answering on the socket at `path`? (false: nothing listens: stale.) */
export async function answers(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.NotFound) {
      return false;
    }
    throw e;
  }
}

/**
 * Makes `path` free for a new socket: a stale socket is removed, a live one or anything
 * else is refused (E1030). Returns the path.
 */
export async function claimSocketPath(path: string): Promise<string> {
  if (new TextEncoder().encode(path).length > SUN_PATH_MAX) {
    throw socketError(
      `the path is longer than a Unix socket address holds (${SUN_PATH_MAX} bytes): ${path}`,
      "use a shorter path, or a bare name (it goes in the runtime directory)",
    );
  }
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return path;
    throw socketError(`${path}: ${(e as Error).message}`);
  }
  if (!st.isSocket) {
    throw new RuntimeError(
      "E1030",
      `${path} exists and is not a socket`,
      "choose another path; vmdesc removes only stale sockets",
    );
  }
  if (await answers(path)) {
    throw new RuntimeError(
      "E1030",
      `a server already answers on ${path}`,
      "another machine is using this socket: choose another name ('vmdesc ps' lists them)",
    );
  }
  await Deno.remove(path);
  return path;
}

/**
 * Runs `bind` (which creates the socket at `path`) with the umask narrowed so the socket
 * is born mode 0600, then checks it is.
 */
export function bindPrivate<T>(path: string, bind: () => T): T {
  const old = Deno.umask(0o177);
  let bound: T;
  try {
    bound = bind();
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse
      ? "the path was taken meanwhile"
      : (e as Error).message;
    throw socketError(`${path}: ${why}`);
  } finally {
    Deno.umask(old);
  }
  Deno.chmodSync(path, 0o600);
  return bound;
}

/**
 * `bindPrivate` for a server that binds asynchronously (node:http's listen): the umask
 * stays narrowed until the socket exists, so it is born 0600 all the same.
 */
export async function listenPrivate(path: string, bind: () => Promise<void>): Promise<void> {
  const old = Deno.umask(0o177);
  try {
    await bind();
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "EADDRINUSE" ? "the path was taken meanwhile" : (e as Error).message;
    throw socketError(`${path}: ${why}`);
  } finally {
    Deno.umask(old);
  }
  Deno.chmodSync(path, 0o600);
}
