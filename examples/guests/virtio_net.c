/*
 * virtio-net: a tiny network stack on a virtio network device, over either transport
 * (transport=pci|mmio), polling its queues. Its address is ip= (hex, default 0x0a000202 =
 * 10.0.2.2); its MAC the device's (VIRTIO_NET_F_MAC). Receive buffers are rxbuf= bytes
 * (default 2048; smaller ones make a frame span several, merged with MRG_RXBUF).
 *
 *   mode=echo   answers ARP requests for ip= and ICMP echo requests to it, until it has
 *               answered pings= of them (default 3): "virtio-net: answered N pings"
 *   mode=tx     sends n= broadcast frames (ethertype 0x88b5, 60 bytes), then waits until
 *               the device has taken all: "virtio-net: sent N frames in C cycles"
 *   mode=rx     counts frames of ethertype 0x88b5 until one of 0x88b6 (or n= of them):
 *               "virtio-net: received N frames in C cycles"; with wait=M it first spins M
 *               million TSC cycles before it gives the device any buffer (the host queues
 *               the frames on the TAP device meanwhile)
 *   mode=badtx  sends frames a device must refuse (a 4-byte frame, checksum requests and a
 *               segmentation request, none of which it negotiated, unknown header flags),
 *               then one good frame:
 *               "virtio-net: sent 5 bad frames and 1 good one"
 *
 * Exit value 0, or the step that failed.
 */
#include "virtio.h"

#define F_MAC (1ull << 5)
#define F_MRG_RXBUF (1ull << 15)
#define F_STATUS (1ull << 16)

#define QSIZE 256
#define HDR 12
#define RXBUF_MAX 2048
#define TX_SLOTS 128
#define FRAME_MAX 1514

struct ring {
  struct virtq_desc desc[QSIZE] __attribute__((aligned(4096)));
  uint16_t avail[3 + QSIZE] __attribute__((aligned(64)));
  uint8_t used[6 + 8 * QSIZE] __attribute__((aligned(64)));
};
static struct ring rx_ring, tx_ring;
static uint8_t rx_bufs[QSIZE][RXBUF_MAX] __attribute__((aligned(64)));
static uint8_t tx_bufs[TX_SLOTS][HDR + FRAME_MAX] __attribute__((aligned(64)));
static uint8_t frame[HDR + 65536];
static struct vdev dev;
static struct vq rxq, txq;
static uint8_t mac[6];
static uint32_t ip, rxbuf, nrx;
static uint32_t tx_free = TX_SLOTS, tx_next;
#define RX_REFILL 16
static uint32_t rx_refills;

static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

static uint16_t checksum(const uint8_t *p, uint32_t n) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i + 1 < n; i += 2) sum += be16(p + i);
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static uint16_t used_idx(struct vq *q) { return *(volatile uint16_t *)(q->used + 2); }
static uint32_t used_id(struct vq *q, uint16_t at) { return *(volatile uint32_t *)(q->used + 4 + 8 * (at % q->size)); }
static uint32_t used_len(struct vq *q, uint16_t at) { return *(volatile uint32_t *)(q->used + 8 + 8 * (at % q->size)); }

static void offer(struct vq *q, uint16_t head) {
  q->avail[2 + (q->avail_idx % q->size)] = head;
  __asm__ volatile("mfence" ::: "memory");
  q->avail[1] = ++q->avail_idx;
}

static void rx_post(uint16_t i) {
  rxq.desc[i].addr = (uint32_t)(uintptr_t)rx_bufs[i];
  rxq.desc[i].len = rxbuf;
  rxq.desc[i].flags = VIRTQ_DESC_F_WRITE;
  rxq.desc[i].next = 0;
  offer(&rxq, i);
}

/* Takes back transmit slots the device has used. */
static void tx_reclaim(void) {
  while (txq.last_used != used_idx(&txq)) {
    txq.last_used++;
    tx_free++;
  }
}

/* Sends `len` bytes of `f` (an Ethernet frame) behind header `hdr` (NULL: zeros); waits for
 * a free slot first. */
static int send_with(const uint8_t *hdr, const uint8_t *f, uint32_t len, int notify) {
  for (uint32_t spin = 0; tx_free == 0; spin++) {
    tx_reclaim();
    if (spin > 400000000u) return -1;
  }
  uint16_t slot = (uint16_t)(tx_next++ % TX_SLOTS);
  tx_free--;
  uint8_t *b = tx_bufs[slot];
  if (hdr) memcpy(b, hdr, HDR);
  else memset(b, 0, HDR);
  memcpy(b + HDR, f, len);
  txq.desc[slot].addr = (uint32_t)(uintptr_t)b;
  txq.desc[slot].len = HDR + len;
  txq.desc[slot].flags = 0;
  txq.desc[slot].next = 0;
  offer(&txq, slot);
  if (notify) virtio_notify_queue(&dev, &txq);
  return 0;
}

static int send(const uint8_t *f, uint32_t len, int notify) { return send_with(0, f, len, notify); }

/*
 * The next received frame (header stripped) into `frame`, its length in *len: 1, or 0 when
 * none is waiting. With MRG_RXBUF a frame spans num_buffers used entries.
 */
static int receive(uint32_t *len) {
  if (rxq.last_used == used_idx(&rxq)) return 0;
  uint16_t id = (uint16_t)used_id(&rxq, rxq.last_used);
  uint32_t n = used_len(&rxq, rxq.last_used);
  rxq.last_used++;
  uint16_t bufs = 1;
  if (dev.features & F_MRG_RXBUF) bufs = (uint16_t)(rx_bufs[id][10] | rx_bufs[id][11] << 8);
  uint32_t at = 0;
  if (n > rxbuf) n = rxbuf;
  memcpy(frame, rx_bufs[id], n);
  at = n;
  rx_post(id);
  for (uint16_t k = 1; k < bufs; k++) {
    for (uint32_t spin = 0; rxq.last_used == used_idx(&rxq); spin++)
      if (spin > 400000000u) return 0;
    id = (uint16_t)used_id(&rxq, rxq.last_used);
    n = used_len(&rxq, rxq.last_used);
    rxq.last_used++;
    if (n > rxbuf) n = rxbuf;
    if (at + n <= sizeof frame) memcpy(frame + at, rx_bufs[id], n);
    at += n;
    rx_post(id);
  }
  /* Buffers go back in batches, as a real driver refills: one notify per RX_REFILL. */
  if (++rx_refills % RX_REFILL == 0 || used_idx(&rxq) == rxq.last_used) virtio_notify_queue(&dev, &rxq);
  *len = at < HDR ? 0 : at - HDR;
  return 1;
}

static uint32_t pings, arps;

/* Answers an ARP request or an ICMP echo request for our address; ignores the rest. */
static void answer(uint8_t *f, uint32_t len) {
  static uint8_t out[FRAME_MAX];
  if (len < 14) return;
  uint16_t type = be16(f + 12);
  if (type == 0x0806 && len >= 42) {
    uint8_t *a = f + 14;
    if (be16(a) != 1 || be16(a + 2) != 0x0800 || be16(a + 6) != 1 || be32(a + 24) != ip) return;
    memcpy(out, a + 8, 6); /* to the asker */
    memcpy(out + 6, mac, 6);
    put16(out + 12, 0x0806);
    uint8_t *r = out + 14;
    put16(r, 1), put16(r + 2, 0x0800), r[4] = 6, r[5] = 4, put16(r + 6, 2);
    memcpy(r + 8, mac, 6), put32(r + 14, ip);
    memcpy(r + 18, a + 8, 6), memcpy(r + 24, a + 14, 4);
    send(out, 42, 1);
    arps++;
    return;
  }
  if (type != 0x0800 || len < 34) return;
  uint8_t *h = f + 14;
  uint32_t ihl = (uint32_t)(h[0] & 15) * 4;
  uint32_t total = be16(h + 2);
  if ((h[0] >> 4) != 4 || ihl < 20 || total < ihl + 8 || 14 + total > len || total > FRAME_MAX - 14) return;
  if (h[9] != 1 || be32(h + 16) != ip) return;
  uint8_t *icmp = h + ihl;
  if (icmp[0] != 8) return;
  memcpy(out, f + 6, 6);
  memcpy(out + 6, mac, 6);
  put16(out + 12, 0x0800);
  uint8_t *o = out + 14;
  memcpy(o, h, total);
  memcpy(o + 12, h + 16, 4); /* source: us */
  memcpy(o + 16, h + 12, 4); /* destination: the asker */
  o[8] = 64;
  put16(o + 10, 0);
  put16(o + 10, checksum(o, ihl));
  uint8_t *oi = o + ihl;
  oi[0] = 0;
  put16(oi + 2, 0);
  put16(oi + 2, checksum(oi, total - ihl));
  send(out, 14 + total, 1);
  pings++;
}

static int setup(void) {
  int transport = cmdline_is("transport", "pci") ? T_PCI : cmdline_is("transport", "mmio") ? T_MMIO : -1;
  if (virtio_find(&dev, VIRTIO_ID_NET, transport) != 0) return 2;
  dev.wait = WAIT_POLL;
  if (virtio_negotiate(&dev, F_MAC | F_MRG_RXBUF | F_STATUS) != 0) return 3;
  if (!(dev.features & F_MAC)) return 4;
  for (int i = 0; i < 6; i++) mac[i] = (uint8_t)virtio_config(&dev, (uint32_t)i, 1);
  rxbuf = cmdline_u32("rxbuf", RXBUF_MAX);
  if (rxbuf < HDR + 14 && !(dev.features & F_MRG_RXBUF)) rxbuf = RXBUF_MAX;
  if (rxbuf < 64) rxbuf = 64;
  if (rxbuf > RXBUF_MAX) rxbuf = RXBUF_MAX;
  nrx = cmdline_u32("rxbufs", QSIZE);
  if (nrx < 1 || nrx > QSIZE) nrx = QSIZE;
  ip = cmdline_u32("ip", 0x0a000202);
  rx_ring.avail[0] = 1; /* no interrupts: we poll */
  tx_ring.avail[0] = 1;
  if (virtio_queue_setup_at(&dev, 0, &rxq, QSIZE, (uint32_t)(uintptr_t)rx_ring.desc,
                            (uint32_t)(uintptr_t)rx_ring.avail, (uint32_t)(uintptr_t)rx_ring.used, 0xffff) != 0)
    return 5;
  if (virtio_queue_setup_at(&dev, 1, &txq, QSIZE, (uint32_t)(uintptr_t)tx_ring.desc,
                            (uint32_t)(uintptr_t)tx_ring.avail, (uint32_t)(uintptr_t)tx_ring.used, 0xffff) != 0)
    return 6;
  virtio_set_status(&dev, 1 | 2 | 8 | 4); /* ACK, DRIVER, FEATURES_OK, DRIVER_OK */
  uint64_t wait = (uint64_t)cmdline_u32("wait", 0) * 1000000u;
  for (uint64_t t0 = rdtsc(); rdtsc() - t0 < wait;) cpu_relax();
  for (uint16_t i = 0; i < nrx; i++) rx_post(i);
  virtio_notify_queue(&dev, &rxq);
  puts("virtio-net: ");
  puts(virtio_transport_name(&dev));
  puts(" mac ");
  for (int i = 0; i < 6; i++) {
    if (i) putc(':');
    put_hex(mac[i], 2);
  }
  puts(dev.features & F_MRG_RXBUF ? " mrg_rxbuf" : "");
  puts(" link ");
  puts(!(dev.features & F_STATUS) ? "?" : (virtio_config(&dev, 6, 2) & 1) ? "up" : "down");
  putc('\n');
  return 0;
}

static void put_u64(uint64_t v) {
  char s[21];
  int i = 20;
  s[i] = 0;
  do {
    s[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  puts(s + i);
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  int r = setup();
  if (r != 0) {
    puts("virtio-net: FAILED setup step ");
    put_dec((uint32_t)r);
    putc('\n');
    return (uint32_t)r;
  }
  uint32_t len;
  if (cmdline_is("mode", "tx")) {
    static uint8_t f[60];
    uint32_t n = cmdline_u32("n", 100);
    memcpy(f, broadcast, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, 0x88b5);
    uint64_t t0 = rdtsc();
    for (uint32_t i = 0; i < n; i++) {
      put32(f + 14, i);
      /* Notify once per batch the ring allows: the device takes them all at once. */
      if (send(f, sizeof f, (i + 1) % 32 == 0 || i + 1 == n) != 0) return 10;
    }
    for (uint32_t spin = 0; tx_free != TX_SLOTS; spin++) {
      tx_reclaim();
      if (spin > 400000000u) return 11;
    }
    uint64_t t1 = rdtsc();
    puts("virtio-net: sent ");
    put_dec(n);
    puts(" frames in ");
    put_u64(t1 - t0);
    puts(" cycles\n");
    return 0;
  }
  if (cmdline_is("mode", "badtx")) {
    static uint8_t f[60];
    memcpy(f, broadcast, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, 0x88b5);
    /* struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset. */
    static const uint8_t needs_csum[HDR] = {1, 0, 0, 0, 0, 0, 14, 0, 16, 0, 0, 0};
    static const uint8_t tso4[HDR] = {1, 1, 54, 0, 0xb4, 5, 34, 0, 16, 0, 0, 0};
    static const uint8_t odd_flags[HDR] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t csum_outside[HDR] = {1, 0, 0, 0, 0, 0, 58, 0, 16, 0, 0, 0};
    if (send_with(0, f, 4, 1) || send_with(needs_csum, f, sizeof f, 1) || send_with(tso4, f, sizeof f, 1) ||
        send_with(odd_flags, f, sizeof f, 1) || send_with(csum_outside, f, sizeof f, 1))
      return 12;
    put32(f + 14, 0x600d);
    if (send(f, sizeof f, 1)) return 13;
    for (uint32_t spin = 0; tx_free != TX_SLOTS; spin++) {
      tx_reclaim();
      if (spin > 400000000u) return 14;
    }
    puts("virtio-net: sent 5 bad frames and 1 good one\n");
    return 0;
  }
  if (cmdline_is("mode", "rx")) {
    uint32_t n = cmdline_u32("n", 0xffffffffu), got = 0;
    uint64_t t0 = 0;
    for (;;) {
      if (!receive(&len)) {
        cpu_relax();
        continue;
      }
      if (len < 14) continue;
      uint16_t type = be16(frame + HDR + 12);
      if (type == 0x88b5) {
        if (got++ == 0) t0 = rdtsc();
        if (got >= n) break;
      } else if (type == 0x88b6) break;
    }
    uint64_t t1 = rdtsc();
    puts("virtio-net: received ");
    put_dec(got);
    puts(" frames in ");
    put_u64(got ? t1 - t0 : 0);
    puts(" cycles\n");
    return 0;
  }
  uint32_t want = cmdline_u32("pings", 3);
  while (pings < want) {
    if (receive(&len)) answer(frame + HDR, len);
    else cpu_relax();
    tx_reclaim();
  }
  /* The last reply is out only once the device has used it (QEMU sends from another thread). */
  for (uint32_t spin = 0; tx_free != TX_SLOTS; spin++) {
    tx_reclaim();
    if (spin > 400000000u) return 15;
  }
  puts("virtio-net: answered ");
  put_dec(pings);
  puts(" pings, ");
  put_dec(arps);
  puts(" arp requests\n");
  return 0;
}
