/*
 * virtio-blk: drives a virtio block device the way an OS would, over either transport,
 * waiting by polling, MSI-X or INTx (virtio.c), and prints what it saw:
 *
 *   mode=test (default)  GET_ID, read sector 0, write a sector and read it back (a
 *                        read-only disk must refuse the write with IOERR), read past the
 *                        end (IOERR), flush; "virtio-blk: all ok" and exit value 0, or the
 *                        number of the step that failed
 *   mode=bench n=N       N sequential 4 KiB reads; prints the TSC cycles they took (with
 *                        hold=1 it then waits in `cli; hlt` for the host to read the VMM's
 *                        counters and end it, instead of exiting)
 *   mode=swap            reads sector 0, then waits for the host to swap the disk's image
 *                        (the configuration generation moves), reads the capacity and
 *                        sector 0 again, writes the test sector (not on a read-only disk)
 *                        and exits with value 0; it prints each step, and whether a
 *                        configuration-change interrupt came (the ISR bit, or an MSI-X
 *                        message on the configuration vector)
 *
 * Command line: transport=pci|mmio (default: the first found, PCI first), irq=poll|msix|intx
 * (default: msix on PCI, intx on mmio), sector=S (the sector test writes; default 1),
 * expect_ro=1 (the disk must be read-only), plus what virtio.c reads to find devices.
 */
#include "virtio.h"

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define F_RO 5
#define F_SEG_MAX 2
#define F_BLK_SIZE 6
#define F_FLUSH 9

static struct {
  uint32_t type, reserved;
  uint64_t sector;
} hdr __attribute__((aligned(64)));
static uint8_t data[4096] __attribute__((aligned(4096)));
static volatile uint8_t status __attribute__((aligned(64)));
static struct vdev dev;

/* One request; the status byte (0xff if the device never wrote it). */
static int request(uint32_t type, uint64_t sector, uint32_t len, int write) {
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = sector;
  status = 0xff;
  struct vbuf bufs[3];
  int n = 0;
  bufs[n++] = (struct vbuf){&hdr, sizeof hdr, 0};
  if (len) bufs[n++] = (struct vbuf){data, len, write};
  bufs[n++] = (struct vbuf){(const void *)&status, 1, 1};
  if (virtio_request(&dev, bufs, n) < 0) return 0x100;
  return status;
}

static void hex_bytes(const uint8_t *p, int n) {
  for (int i = 0; i < n; i++) put_hex(p[i], 2);
}

static uint32_t fail(uint32_t step, const char *what) {
  puts("virtio-blk: FAILED ");
  puts(what);
  putc('\n');
  return step;
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  int transport = cmdline_is("transport", "pci") ? T_PCI : cmdline_is("transport", "mmio") ? T_MMIO : -1;
  if (virtio_find(&dev, VIRTIO_ID_BLOCK, transport) != 0) return fail(2, "no virtio block device found");
  enum vwait wait = virtio_wait_from_cmdline(dev.transport);
  int r = virtio_init(&dev, (1ull << F_RO) | (1ull << F_FLUSH) | (1ull << F_BLK_SIZE) | (1ull << F_SEG_MAX), wait);
  if (r != 0) {
    puts("virtio-blk: init step ");
    put_dec((uint32_t)-r);
    putc('\n');
    return fail(3, "device initialisation");
  }
  uint32_t cap_lo = virtio_config(&dev, 0, 4), cap_hi = virtio_config(&dev, 4, 4);
  uint64_t capacity = ((uint64_t)cap_hi << 32) | cap_lo;
  int ro = (dev.features >> F_RO) & 1;
  puts("virtio-blk: ");
  puts(virtio_transport_name(&dev));
  putc(' ');
  puts(virtio_wait_name(wait));
  puts(" capacity ");
  put_dec(cap_lo);
  puts(" sectors");
  puts(ro ? " read-only\n" : " read-write\n");

  if (cmdline_is("mode", "bench")) {
    uint32_t n = cmdline_u32("n", 1000);
    uint32_t per = (uint32_t)(capacity / 8); /* 4 KiB reads that fit */
    if (!per) return fail(20, "disk smaller than 4 KiB");
    if (request(T_IN, 0, 4096, 1) != S_OK) return fail(21, "warm-up read");
    uint32_t irqs0 = virtio_irqs;
    uint64_t t0 = rdtsc();
    for (uint32_t i = 0; i < n; i++)
      if (request(T_IN, (uint64_t)(i % per) * 8, 4096, 1) != S_OK) return fail(22, "bench read");
    uint64_t t1 = rdtsc();
    puts("bench: reads ");
    put_dec(n);
    puts(" cycles ");
    uint64_t c = t1 - t0;
    put_hex((uint32_t)(c >> 32), 8);
    put_hex((uint32_t)c, 8);
    puts(" irqs ");
    put_dec(virtio_irqs - irqs0);
    putc('\n');
    if (cmdline_is("hold", "1"))
      for (;;) __asm__ volatile("cli; hlt");
    return 0;
  }

  if (cmdline_is("mode", "swap")) {
    if (request(T_IN, 0, 512, 1) != S_OK) return fail(30, "read before the swap");
    uint32_t gen0 = virtio_config_generation(&dev);
    (void)virtio_take_isr(&dev);
    uint32_t irqs0 = virtio_irqs;
    puts("swap: before capacity ");
    put_dec(cap_lo);
    puts(" sector 0 starts ");
    hex_bytes(data, 16);
    putc('\n');
    uint32_t isr = 0, gen;
    while ((gen = virtio_config_generation(&dev)) == gen0) {
      isr |= virtio_take_isr(&dev);
      cpu_relax();
    }
    isr |= virtio_take_isr(&dev);
    /* A consistent capacity: the generation the same before and after reading it. */
    do {
      gen = virtio_config_generation(&dev);
      cap_lo = virtio_config(&dev, 0, 4);
      cap_hi = virtio_config(&dev, 4, 4);
    } while (gen != virtio_config_generation(&dev));
    capacity = ((uint64_t)cap_hi << 32) | cap_lo;
    puts("swap: configuration changed, generation ");
    put_dec(gen0);
    puts(" -> ");
    put_dec(gen);
    puts((isr & 2) || virtio_irqs != irqs0 ? ", with an interrupt\n" : ", without an interrupt\n");
    if (request(T_IN, 0, 512, 1) != S_OK) return fail(31, "read after the swap");
    puts("swap: after capacity ");
    put_dec(cap_lo);
    puts(" sector 0 starts ");
    hex_bytes(data, 16);
    putc('\n');
    if (request(T_IN, capacity - 1, 512, 1) != S_OK) return fail(32, "read of the new last sector");
    if (request(T_IN, capacity, 512, 1) != S_IOERR) return fail(33, "read past the new end");
    uint32_t s = cmdline_u32("sector", 1);
    for (int i = 0; i < 512; i++) data[i] = (uint8_t)(0xa5 ^ i);
    memcpy(data, "vmdesc virtio-blk was here", 26);
    int w = request(T_OUT, s, 512, 0);
    puts(w == S_OK ? "swap: wrote sector " : "swap: write refused, sector ");
    put_dec(s);
    puts("\nvirtio-blk: swap ok\n");
    return 0;
  }

  /* GET_ID */
  memset(data, 0, 20);
  if (request(T_GET_ID, 0, 20, 1) != S_OK) return fail(4, "GET_ID");
  data[20] = 0;
  puts("virtio-blk: serial \"");
  puts((const char *)data);
  puts("\"\n");

  /* Read sector 0. */
  if (request(T_IN, 0, 512, 1) != S_OK) return fail(5, "read of sector 0");
  puts("virtio-blk: sector 0 starts ");
  hex_bytes(data, 16);
  putc('\n');

  /* Write a sector and read it back (or have the write refused). */
  uint32_t s = cmdline_u32("sector", 1);
  for (int i = 0; i < 512; i++) data[i] = (uint8_t)(0xa5 ^ i);
  const char *mark = "vmdesc virtio-blk was here";
  memcpy(data, mark, strlen(mark));
  int w = request(T_OUT, s, 512, 0);
  if (ro || cmdline_is("expect_ro", "1")) {
    if (!ro) return fail(6, "the disk should be read-only");
    if (w != S_IOERR) return fail(7, "a write to a read-only disk was not refused");
    puts("virtio-blk: write refused (read-only)\n");
  } else {
    if (w != S_OK) return fail(8, "write");
    memset(data, 0, 512);
    if (request(T_IN, s, 512, 1) != S_OK) return fail(9, "read back");
    for (int i = 0; i < 512; i++) {
      uint8_t want = i < (int)strlen(mark) ? (uint8_t)mark[i] : (uint8_t)(0xa5 ^ i);
      if (data[i] != want) return fail(10, "read back differs");
    }
    puts("virtio-blk: wrote sector ");
    put_dec(s);
    puts(" and read it back\n");
  }

  /* Past the end: the sector after the last, and a read running over the end. */
  if (request(T_IN, capacity, 512, 1) != S_IOERR) return fail(11, "read past the end");
  if (request(T_IN, capacity - 1, 1024, 1) != S_IOERR) return fail(12, "read over the end");
  puts("virtio-blk: past the end refused\n");

  if ((dev.features >> F_FLUSH) & 1) {
    if (request(T_FLUSH, 0, 0, 0) != S_OK) return fail(13, "flush");
    puts("virtio-blk: flushed\n");
  }
  if (wait != WAIT_POLL) {
    puts("virtio-blk: interrupts ");
    put_dec(virtio_irqs);
    putc('\n');
    if (virtio_irqs == 0) return fail(14, "no interrupt");
  }
  puts("virtio-blk: all ok\n");
  return 0;
}
