/*
 * virtio-console: finds a virtio console (transport=, irq= as for virtio-blk: msix on PCI,
 * intx on virtio-mmio by default), prints through its port, then echoes every byte it
 * receives back through it until an EOT byte (0x04, ^D). Also:
 * - with VIRTIO_CONSOLE_F_SIZE, prints the size the device gives ("size COLSxROWS"),
 *   else "no size";
 * - with VIRTIO_CONSOLE_F_EMERG_WRITE, writes one line through emerg_wr;
 * - rx=N: the receive buffer's size (default 16: long input takes many buffers, and the
 *   device holds the rest meanwhile); wait=N: spins N million times before it gives the
 *   first receive buffer (input arrives while the guest has none).
 * COM1 gets the summary: "virtio-console: echoed N bytes in M buffers" and "all ok"; exit
 * value 0, or the step that failed.
 */
#include "virtio.h"

#define F_SIZE (1ull << 0)
#define F_EMERG_WRITE (1ull << 2)
#define RECEIVEQ 0
#define TRANSMITQ 1
#define EOT 0x04

static struct vdev dev;
static struct vq queues[2];
static struct vq_mem rings[2] __attribute__((aligned(4096)));
static char rxbuf[4096];
static char txbuf[4096];

/* Sends `len` bytes through transmitq0 and waits until the device has taken them. */
static int send(const char *s, uint32_t len) {
  while (len > 0) {
    uint32_t n = len < sizeof txbuf ? len : sizeof txbuf;
    memcpy(txbuf, s, n);
    struct vbuf b = {txbuf, n, 0};
    virtio_submit_queue(&dev, &queues[TRANSMITQ], TRANSMITQ, &b, 1);
    if (virtio_wait_queue(&dev, &queues[TRANSMITQ], 0) != 0) return -1;
    s += n;
    len -= n;
  }
  return 0;
}

static int say(const char *s) { return send(s, (uint32_t)strlen(s)); }

static void say_dec(uint32_t v) {
  char b[12];
  int i = 11;
  b[i] = 0;
  do {
    b[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  say(b + i);
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  int transport = cmdline_is("transport", "pci") ? T_PCI : cmdline_is("transport", "mmio") ? T_MMIO : -1;
  if (virtio_find(&dev, VIRTIO_ID_CONSOLE, transport) != 0) {
    puts("virtio-console: FAILED no virtio console found\n");
    return 2;
  }
  enum vwait wait = virtio_wait_from_cmdline(dev.transport);
  int r = virtio_init_queues(&dev, F_SIZE | F_EMERG_WRITE, wait, 2, queues, rings);
  if (r != 0) {
    puts("virtio-console: FAILED device initialisation, step ");
    put_dec((uint32_t)-r);
    putc('\n');
    return 3;
  }
  if (say("virtio-console: hello from the guest over ") != 0) {
    puts("virtio-console: FAILED transmit\n");
    return 4;
  }
  say(virtio_transport_name(&dev));
  say(" ");
  say(virtio_wait_name(wait));
  say("\n");
  if (dev.features & F_SIZE) {
    say("virtio-console: size ");
    say_dec(virtio_config(&dev, 0, 2));
    say("x");
    say_dec(virtio_config(&dev, 2, 2));
    say("\n");
  } else {
    say("virtio-console: no size\n");
  }
  if (dev.features & F_EMERG_WRITE) {
    const char *e = "virtio-console: emergency write\n";
    uint32_t at = dev.transport == T_PCI ? dev.devcfg + 8 : dev.base + 0x100 + 8;
    for (; *e; e++) mmio_write32(at, (uint8_t)*e);
  }
  say("virtio-console: echo until ^D\n");

  uint32_t rx = cmdline_u32("rx", 16);
  if (rx == 0 || rx > sizeof rxbuf) rx = sizeof rxbuf;
  for (uint32_t n = cmdline_u32("wait", 0) * 1000000u; n > 0; n--) cpu_relax();
  uint32_t echoed = 0, buffers = 0;
  for (;;) {
    struct vbuf b = {rxbuf, rx, 1};
    uint32_t len = 0;
    virtio_submit_queue(&dev, &queues[RECEIVEQ], RECEIVEQ, &b, 1);
    if (virtio_wait_queue(&dev, &queues[RECEIVEQ], &len) != 0) {
      puts("virtio-console: FAILED no input\n");
      return 5;
    }
    buffers++;
    if (len > rx) {
      puts("virtio-console: FAILED the device wrote past the buffer\n");
      return 6;
    }
    uint32_t keep = 0;
    int end = 0;
    while (keep < len && !(end = rxbuf[keep] == EOT)) keep++;
    if (send(rxbuf, keep) != 0) return 4;
    echoed += keep;
    if (end) break;
  }
  say("virtio-console: bye\n");
  puts("virtio-console: ");
  puts(virtio_transport_name(&dev));
  putc(' ');
  puts(virtio_wait_name(wait));
  puts(" echoed ");
  put_dec(echoed);
  puts(" bytes in ");
  put_dec(buffers);
  puts(" buffers, ");
  put_dec(virtio_irqs);
  puts(" interrupts\n");
  puts("virtio-console: all ok\n");
  return 0;
}
