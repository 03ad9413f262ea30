/**
 * The host side of a virtio network device: a TAP device opened through /dev/net/tun.
 *
 * - Opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (frames with a virtio-net header in
 *   front, no packet-information prefix) and TUNSETVNETHDRSZ 12, the header of a virtio 1.x
 *   driver (struct virtio_net_hdr_v1: num_buffers always present), so a frame crosses
 *   between the TAP device and the guest's buffers unchanged.
 * - A name that is free is created as a TAP device of this process (not persistent): the
 *   kernel removes it when the last file descriptor closes, so a machine leaves nothing
 *   behind, however it ends. A persistent TAP device made beforehand (`ip tuntap add`) is
 *   attached to and left as it was: its addresses, routes and bridge stay the host's
 *   business. QEMU and Firecracker behave the same way.
 * - Non-blocking: the device reads only when the guest has room (never parks the vCPU in
 *   read), and a waiter thread polls the descriptor (rx_waiter.ts).
 * - The host refusing is a coded error with a hint (E1040 no /dev/net/tun, E1041 refused:
 *   permission, busy; E1042 the name is another kind of interface).
 *
 * Its own lazily opened libc handle (read, write, eventfd), as file_io.ts does: machines
 * without a network device pay nothing for it.
 */
import { RuntimeError } from "../../../errors.ts";
import {
  close,
  errno,
  errnoName,
  HostError,
  ioctl,
  ioctlBuf,
  kernelPathExists,
  O_CLOEXEC,
  O_RDWR,
  open,
} from "../../../host/libc.ts";

const SYMBOLS = {
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;
function sym(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  if (lib === null) lib = Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

/** <linux/if_tun.h> */
const TUNSETIFF = 0x400454ca;
const TUNGETIFF = 0x800454d2;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
const IFF_TAP = 0x0002;
const IFF_PERSIST = 0x0800;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
/** TUNSETOFFLOAD flags: what the host may hand the guest unchecksummed or unsegmented. */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08 } as const;

const O_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const IFNAMSIZ = 16;
export const EAGAIN = 11;
const EINTR = 4;
const EPERM = 1;
const ENOENT = 2;
const EACCES = 13;
const EBUSY = 16;
const ENODEV = 19;
const ENXIO = 6;
const EINVAL = 22;

/** struct virtio_net_hdr_v1: the header in front of every frame, both ways. */
export const VNET_HDR_SIZE = 12;

export interface Tap {
  fd: number;
  name: string;
  /** vmdesc created it (the kernel removes it when `fd` closes); false: it was persistent. */
  created: boolean;
  /** The offloads TUNSETOFFLOAD accepted here (TUN_F bits), before any is turned on. */
  offloads: number;
}

/** Opens (creating when absent) TAP device `name`; `label` names the guest's device. */
export function openTap(label: string, name: string): Tap {
  if (new TextEncoder().encode(name).length >= IFNAMSIZ || name === "") {
    throw new RuntimeError(
      "E1006",
      `${label}: the TAP device name \`${name}\` is not 1 to ${IFNAMSIZ - 1} bytes`,
      "lower the machine again (vmdesc check reports this as E0220)",
    );
  }
  let fd: number;
  try {
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  } catch (e) {
    if (!(e instanceof HostError)) throw e;
    if (e.errno === ENOENT || e.errno === ENODEV || e.errno === ENXIO) {
      throw new RuntimeError(
        "E1040",
        `${label}: cannot open /dev/net/tun: ${e.errnoName}`,
        "load the tun module (`modprobe tun`); in a container, pass the device in (`--device /dev/net/tun`)",
      );
    }
    throw new RuntimeError(
      "E1041",
      `${label}: cannot open /dev/net/tun: ${e.errnoName}`,
      e.errno === EACCES || e.errno === EPERM
        ? "run vmdesc as a user who may open /dev/net/tun (root, or a member of the group that owns it)"
        : "see `dmesg` for why the kernel refused",
    );
  }
  try {
    const ifr = new Uint8Array(40);
    ifr.set(new TextEncoder().encode(name));
    new DataView(ifr.buffer).setUint16(16, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
    try {
      ioctlBuf(fd, TUNSETIFF, ifr, "TUNSETIFF");
    } catch (e) {
      if (!(e instanceof HostError)) throw e;
      throw refused(label, name, e.errno);
    }
    const hdr = new Uint8Array(4);
    new DataView(hdr.buffer).setInt32(0, VNET_HDR_SIZE, true);
    ioctlBuf(fd, TUNSETVNETHDRSZ, hdr, "TUNSETVNETHDRSZ");
    const got = new Uint8Array(40);
    ioctlBuf(fd, TUNGETIFF, got, "TUNGETIFF");
    const flags = new DataView(got.buffer).getUint16(16, true);
    // What the guest may be offered: the host's TAP takes checksum and TSO offloads unless
    // the kernel is very old; ask once, then turn them all off until the driver agrees.
    let offloads = 0;
    const all = TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.TSO_ECN;
    if (setOffloads(fd, all)) offloads = all;
    else if (setOffloads(fd, TUN_F.CSUM)) offloads = TUN_F.CSUM;
    setOffloads(fd, 0);
    return { fd, name, created: (flags & IFF_PERSIST) === 0, offloads };
  } catch (e) {
    close(fd);
    throw e;
  }
}

function refused(label: string, name: string, e: number): RuntimeError {
  const exists = kernelPathExists(`/sys/class/net/${name}`);
  if (e === EINVAL && exists && !kernelPathExists(`/sys/class/net/${name}/tun_flags`)) {
    return new RuntimeError(
      "E1042",
      `${label}: the interface ${name} exists and is not a TAP device`,
      "name a TAP device (vmdesc creates one when the name is free); to put the guest on a bridge, add its TAP device to the bridge (`ip link set TAP master BRIDGE`)",
    );
  }
  if (e === EINVAL && exists) {
    return new RuntimeError(
      "E1042",
      `${label}: ${name} is a TUN (layer 3) device or a multiqueue TAP device, not a plain TAP device`,
      `recreate it as a TAP device: \`ip tuntap del dev ${name} mode tun && ip tuntap add dev ${name} mode tap\``,
    );
  }
  if (e === EPERM || e === EACCES) {
    return new RuntimeError(
      "E1041",
      `${label}: the host refused the TAP device ${name}: ${errnoName(e)}`,
      `run as root (CAP_NET_ADMIN), or create it once for your user: \`sudo ip tuntap add dev ${name} mode tap user $USER\``,
    );
  }
  if (e === EBUSY) {
    return new RuntimeError(
      "E1041",
      `${label}: the TAP device ${name} is busy: another process (a vmdesc, a QEMU) has it open`,
      "stop that process, or give this machine another `tap`",
    );
  }
  return new RuntimeError(
    "E1041",
    `${label}: the host refused the TAP device ${name}: ${errnoName(e)}`,
    "see `dmesg` for why the kernel refused",
  );
}

/** TUNSETOFFLOAD; false when the kernel refuses that combination. */
export function setOffloads(fd: number, flags: number): boolean {
  try {
    ioctl(fd, TUNSETOFFLOAD, flags, "TUNSETOFFLOAD");
    return true;
  } catch (e) {
    if (e instanceof HostError) return false;
    throw e;
  }
}

const num = (v: number | bigint): number => typeof v === "bigint" ? Number(v) : v;

/** One frame (with its header) into `buf`: its length, or -errno (-EAGAIN: none waiting). */
export function readFrame(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const r = num(sym().read(fd, buf, BigInt(buf.length)));
    if (r >= 0) return r;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

/** One frame (with its header) out: its length, or -errno. */
export function writeFrame(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const r = num(sym().write(fd, buf, BigInt(buf.length)));
    if (r >= 0) return r;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

/** A non-blocking eventfd (the waiter's stop signal). */
export function eventFd(): number {
  const fd = sym().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    throw new RuntimeError(
      "E1041",
      `cannot make the TAP waiter's eventfd: ${errnoName(errno())}`,
      "the process may be out of file descriptors: raise `ulimit -n`",
    );
  }
  return fd;
}

/** Adds 1 to an eventfd (wakes whoever polls it). */
export function signalEventFd(fd: number): void {
  const one = new Uint8Array(8);
  one[0] = 1;
  sym().write(fd, one, 8n);
}
