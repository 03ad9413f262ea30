/**
 * virtio-net (virtio 1.2, 5.1) on a host TAP device (tap.ts): queue 0 receives, queue 1
 * transmits; no control queue, no multiqueue.
 *
 * Features: MAC (the Plan's address in the configuration), STATUS (LINK_UP), MRG_RXBUF (a
 * frame may span several receive buffers), CSUM / HOST_TSO4 / HOST_TSO6 / HOST_ECN (the
 * guest may send frames with partial checksums or unsegmented: the TAP device finishes
 * them), and, where the host's TAP device takes them (TUNSETOFFLOAD), GUEST_CSUM /
 * GUEST_TSO4 / GUEST_TSO6 / GUEST_ECN (the host may hand the guest such frames). The TAP's
 * offloads are set from what the driver accepted when it sets DRIVER_OK.
 *
 * Every frame crosses with its 12-byte struct virtio_net_hdr_v1 in front, unchanged but for
 * num_buffers (the device's to fill on receive).
 *
 * Transmit (notify of queue 1, in the exit): each chain is one frame; it is checked (header
 * plus at least an Ethernet header, at most a 64 KiB TSO frame; a checksum or segmentation
 * request only where its feature was negotiated and inside the frame) and written to the
 * TAP device. A frame that fails a check, or that the host refuses, is dropped and counted;
 * the chain is returned either way (a transmit chain has nothing to write back).
 *
 * Receive: frames are read from the TAP device only while the receive queue has a buffer
 * (rx_waiter.ts says who wakes the device), one frame at a time into a staging buffer, then
 * copied into as many buffers as it needs (one without MRG_RXBUF). A frame the available
 * buffers cannot hold yet stays staged, the buffers are given back unused, and the device
 * waits for the driver to add more (it asks for the notify with EVENT_IDX): nothing is lost
 * or delivered twice. A frame no set of buffers can ever hold (larger than the whole ring,
 * or than one buffer without MRG_RXBUF) is dropped and counted. A reset drops the staged
 * frame (counted).
 */
import { type BackendArgs, configReader } from "../backend.ts";
import type { VirtioBackend, VirtioCore } from "../core.ts";
import type { Chain, SplitQueue } from "../queue.ts";
import { bit } from "../spec.ts";
import { sliceStream, writeStream } from "../buffers.ts";
import { invalidPlan } from "../../errors.ts";
import { close as closeFd, errnoName } from "../../../host/libc.ts";
import {
  EAGAIN,
  openTap,
  readFrame,
  setOffloads,
  type Tap,
  TUN_F,
  VNET_HDR_SIZE,
  writeFrame,
} from "./tap.ts";
import { RxWaiter } from "./rx_waiter.ts";

/** Feature bits (5.1.3). */
export const NET_F = {
  CSUM: 0,
  GUEST_CSUM: 1,
  MAC: 5,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_ECN: 9,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_ECN: 13,
  MRG_RXBUF: 15,
  STATUS: 16,
} as const;

/** struct virtio_net_hdr_v1 fields (5.1.6). */
const HDR_F_NEEDS_CSUM = 1;
const GSO = { NONE: 0, TCPV4: 1, TCPV6: 4, ECN: 0x80 } as const;
const LINK_UP = 1;

const RX = 0;
const TX = 1;
/** Ethernet header (the least a frame is). */
const ETH_HLEN = 14;
/** The largest frame either way: a 64 KiB TSO frame with Ethernet and VLAN headers. */
export const MAX_FRAME = 65535 + ETH_HLEN + 4;
const EIO = 5;
/** Frames moved per wake-up at most, so a busy TAP cannot keep the vCPU from its guest. */
const RX_BATCH = 256;

/** mac[6], status u16, max_virtqueue_pairs u16. */
const CONFIG_SIZE = 10;

export function createNet({ label, plan, ctx }: BackendArgs): VirtioBackend {
  const b = plan.backing;
  if (b.kind !== "tap") {
    throw invalidPlan(`${label}: a virtio_net device needs a tap backing`, "give it `tap`");
  }
  if (plan.queue_sizes.length !== 2) {
    throw invalidPlan(
      `${label}: a virtio_net device has two queues (receive, transmit)`,
      "set queue_sizes [256, 256], as vmdesc lowers it",
    );
  }
  const mac = b.mac.split(":").map((h) => parseInt(h, 16));
  if (mac.length !== 6 || mac.some((x) => !(x >= 0 && x <= 255)) || (mac[0] & 1) !== 0) {
    throw invalidPlan(`${label}: the MAC ${b.mac} is not a unicast address`, "lower it again");
  }
  const tap: Tap = openTap(label, b.tap);

  let features = bit(NET_F.MAC) | bit(NET_F.STATUS) | bit(NET_F.MRG_RXBUF) | bit(NET_F.CSUM) |
    bit(NET_F.HOST_TSO4) | bit(NET_F.HOST_TSO6) | bit(NET_F.HOST_ECN);
  if (tap.offloads & TUN_F.CSUM) features |= bit(NET_F.GUEST_CSUM);
  if (tap.offloads & TUN_F.TSO4) features |= bit(NET_F.GUEST_TSO4);
  if (tap.offloads & TUN_F.TSO6) features |= bit(NET_F.GUEST_TSO6);
  if (tap.offloads & TUN_F.TSO_ECN) features |= bit(NET_F.GUEST_ECN);

  const config = new Uint8Array(CONFIG_SIZE);
  config.set(mac, 0);
  new DataView(config.buffer).setUint16(6, LINK_UP, true);
  new DataView(config.buffer).setUint16(8, 1, true);

  const counters = {
    rx_frames: 0,
    rx_bytes: 0,
    /** Frames no buffers could hold (larger than the ring, or than one buffer). */
    rx_dropped: 0,
    /** A frame waited for the guest to add receive buffers. */
    rx_waits_for_room: 0,
    /** Frames dropped while staged, by a device reset. */
    rx_dropped_reset: 0,
    rx_read_errors: 0,
    tx_frames: 0,
    tx_bytes: 0,
    /** Frames that failed a check (length, header, an offload not negotiated). */
    tx_malformed: 0,
    /** Frames the host's TAP device refused (link down, a header the kernel rejects). */
    tx_errors: 0,
    waiter_kicks: 0,
  };

  let core: VirtioCore | null = null;
  const staging = new Uint8Array(VNET_HDR_SIZE + MAX_FRAME);
  const txBuf = new Uint8Array(VNET_HDR_SIZE + MAX_FRAME);
  /** Bytes of the frame staged and not yet delivered (0: none). */
  let staged = 0;
  let mrg = false;
  let readBroken = false;
  const warned = new Set<string>();
  const warnOnce = (kind: string, message: string) => {
    if (warned.has(kind)) return;
    warned.add(kind);
    ctx.warn(`${label}: ${message} (reported once; \`--stats\` counts them)`);
  };

  let waiter: RxWaiter | null = null;
  try {
    waiter = ctx.waker ? new RxWaiter(tap.fd, ctx.waker) : null;
  } catch (e) {
    closeFd(tap.fd);
    throw e;
  }

  /**
   * Puts the staged frame into the guest's receive buffers. "done": delivered or dropped;
   * "room": not enough buffers yet (the ones taken are given back unused); "stop": the
   * ring is broken (the core set NEEDS_RESET).
   */
  function deliver(q: SplitQueue): "done" | "room" | "stop" {
    const c = core!;
    const taken: Chain[] = [];
    const lens: number[] = [];
    let at = 0;
    /** Drops the frame: the buffers already filled go back empty (a guest's own fault). */
    const drop = (kind: string, message: string): "done" => {
      for (const t of taken) q.push(t.head, 0);
      counters.rx_dropped++;
      warnOnce(kind, message);
      return "done";
    };
    while (at < staged) {
      const p = q.pop(c.ram);
      if (p === null) {
        if (taken.length >= q.size) {
          q.unpop(taken.length);
          counters.rx_dropped++;
          warnOnce(
            "rx_too_large",
            `a ${
              staged - VNET_HDR_SIZE
            }-byte frame is larger than all the receive buffers together: dropped`,
          );
          return "done";
        }
        q.unpop(taken.length);
        return "room";
      }
      if ("fatal" in p) {
        c.needsReset(p.fatal.kind, p.fatal.detail);
        return "stop";
      }
      if ("fault" in p) {
        // A broken chain fails alone (returned with nothing written); so does the frame.
        c.fault(p.fault.kind, p.fault.detail, "chain");
        q.push(p.head, 0);
        return drop("rx_bad_chain", "a frame met a broken receive chain: dropped");
      }
      if (p.writeLen === 0 || (at === 0 && p.writeLen < VNET_HDR_SIZE)) {
        c.fault(
          "chain_length",
          `queue ${RX}, chain ${p.head}: a receive buffer of ${p.writeLen} bytes`,
          "chain",
        );
        q.push(p.head, 0);
        return drop("rx_bad_chain", "a frame met a broken receive chain: dropped");
      }
      if (!mrg && p.writeLen < staged) {
        // Without MRG_RXBUF a frame goes into one buffer, which must hold it.
        q.unpop(1);
        counters.rx_dropped++;
        warnOnce(
          "rx_small_buffer",
          `a ${
            staged - VNET_HDR_SIZE
          }-byte frame does not fit a ${p.writeLen}-byte receive buffer (no MRG_RXBUF): dropped`,
        );
        return "done";
      }
      const n = Math.min(p.writeLen, staged - at);
      let o = at;
      for (const piece of sliceStream(p.writable, 0, n)) {
        piece.set(staging.subarray(o, o + piece.length));
        o += piece.length;
      }
      taken.push(p);
      lens.push(n);
      at += n;
    }
    // num_buffers: in the header, at the start of the first buffer.
    writeStream(taken[0].writable, 10, Uint8Array.of(taken.length & 0xff, taken.length >> 8));
    for (let i = 0; i < taken.length; i++) q.push(taken[i].head, lens[i]);
    counters.rx_frames++;
    counters.rx_bytes += staged - VNET_HDR_SIZE;
    return "done";
  }

  return {
    features,
    configSize: CONFIG_SIZE,
    readConfig: configReader(config),
    writeConfig() {
      // The MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR (not offered).
    },
    attach(c: VirtioCore) {
      core = c;
    },
    activate() {
      const c = core!;
      mrg = c.negotiated(NET_F.MRG_RXBUF);
      let off = 0;
      if (c.negotiated(NET_F.GUEST_CSUM)) {
        off |= TUN_F.CSUM;
        if (c.negotiated(NET_F.GUEST_TSO4)) off |= TUN_F.TSO4;
        if (c.negotiated(NET_F.GUEST_TSO6)) off |= TUN_F.TSO6;
        if (c.negotiated(NET_F.GUEST_ECN) && (off & (TUN_F.TSO4 | TUN_F.TSO6))) {
          off |= TUN_F.TSO_ECN;
        }
      }
      if (!setOffloads(tap.fd, off)) setOffloads(tap.fd, 0);
      receive();
    },
    notify(queue: number): boolean {
      if (queue !== RX) return false;
      receive(); // the driver added receive buffers
      return true;
    },
    poll() {
      counters.waiter_kicks = waiter?.kicks ?? 0;
      receive();
    },
    handle(queue: number, chain: Chain): number {
      if (queue === TX) transmit(chain);
      return 0;
    },
    reset() {
      if (staged > 0) counters.rx_dropped_reset++;
      staged = 0;
      mrg = false;
      waiter?.disarm();
      setOffloads(tap.fd, 0);
    },
    stats: () => ({ ...counters, waiter_kicks: waiter?.kicks ?? 0 }),
    close() {
      waiter?.close();
      waiter = null;
      closeFd(tap.fd);
    },
  };

  function transmit(chain: Chain): void {
    const c = core!;
    const len = chain.readLen;
    if (len < VNET_HDR_SIZE + ETH_HLEN || len > VNET_HDR_SIZE + MAX_FRAME) {
      counters.tx_malformed++;
      warnOnce(
        "tx_length",
        `a ${len}-byte transmit chain (header and frame: ${VNET_HDR_SIZE + ETH_HLEN} to ${
          VNET_HDR_SIZE + MAX_FRAME
        } bytes): dropped`,
      );
      return;
    }
    let o = 0;
    for (const piece of chain.readable) {
      txBuf.set(piece, o);
      o += piece.length;
    }
    const h = new DataView(txBuf.buffer, 0, VNET_HDR_SIZE);
    const flags = h.getUint8(0);
    const gso = h.getUint8(1);
    const csumStart = h.getUint16(6, true);
    const csumOffset = h.getUint16(8, true);
    const frame = len - VNET_HDR_SIZE;
    let bad: string | null = null;
    if (flags & ~HDR_F_NEEDS_CSUM) bad = `header flags 0x${flags.toString(16)}`;
    else if (flags & HDR_F_NEEDS_CSUM) {
      if (!c.negotiated(NET_F.CSUM)) bad = "a checksum request without VIRTIO_NET_F_CSUM";
      else if (csumStart + csumOffset + 2 > frame) bad = "a checksum field outside the frame";
    }
    if (!bad && gso !== GSO.NONE) {
      const type = gso & ~GSO.ECN;
      const ok = (type === GSO.TCPV4 && c.negotiated(NET_F.HOST_TSO4)) ||
        (type === GSO.TCPV6 && c.negotiated(NET_F.HOST_TSO6));
      if (!ok) bad = `segmentation type 0x${gso.toString(16)} not negotiated`;
      else if ((gso & GSO.ECN) && !c.negotiated(NET_F.HOST_ECN)) bad = "ECN without HOST_ECN";
      else if (!(flags & HDR_F_NEEDS_CSUM)) bad = "segmentation without a checksum request";
    }
    if (bad) {
      counters.tx_malformed++;
      warnOnce("tx_header", `a transmit header with ${bad}: frame dropped`);
      return;
    }
    h.setUint16(10, 0, true); // num_buffers means nothing on transmit
    const r = writeFrame(tap.fd, txBuf.subarray(0, len));
    if (r < 0) {
      counters.tx_errors++;
      warnOnce(
        "tx_error",
        -r === EIO
          ? `the TAP device ${tap.name} is down: frames are dropped until it is up (\`ip link set ${tap.name} up\`)`
          : `the TAP device ${tap.name} refused a frame (${errnoName(-r)}): dropped`,
      );
      return;
    }
    counters.tx_frames++;
    counters.tx_bytes += frame;
  }

  /** Moves frames from the TAP device into the receive queue while there is room. */
  function receive(): void {
    const c = core;
    if (!c || !c.live || readBroken) return;
    const q = c.queues[RX];
    if (!q.ready) return;
    const oldUsed = q.usedIdx;
    let outcome: "drained" | "room" | "busy" | "stop" = "busy";
    for (let n = 0; n < RX_BATCH; n++) {
      if (staged === 0) {
        if (!q.hasAvailable()) {
          // No room: ask for the driver's next receive notify; buffers added meanwhile
          // are seen by the look after it.
          const seen = q.availIdx;
          q.notifyOnMore();
          if (q.hasAvailable() || q.availIdx !== seen) continue;
          outcome = "room";
          break;
        }
        const r = readFrame(tap.fd, staging);
        if (r === -EAGAIN) {
          outcome = "drained";
          break;
        }
        if (r < 0) {
          counters.rx_read_errors++;
          readBroken = true;
          warnOnce(
            "rx_read",
            `reading the TAP device ${tap.name} failed (${errnoName(-r)}): receiving stops`,
          );
          outcome = "stop";
          break;
        }
        if (r < VNET_HDR_SIZE + ETH_HLEN) continue; // the kernel never hands out less
        staged = r;
      }
      const d = deliver(q);
      if (d === "stop") {
        outcome = "stop";
        break;
      }
      if (d === "room") {
        const seen = q.availIdx;
        q.notifyOnMore();
        if (q.availIdx !== seen) continue;
        outcome = "room";
        break;
      }
      staged = 0;
    }
    c.usedAdded(q, oldUsed);
    if (outcome === "room") {
      counters.rx_waits_for_room++;
      waiter?.disarm();
    } else if (outcome === "drained" || outcome === "busy") {
      // Empty: wait for the next frame. A full batch: the waiter finds the TAP readable
      // at once and kicks again, after the guest has run.
      waiter?.arm();
    }
  }
}
