/*
 * virtio-rng: reads n= bytes (default 256) from a virtio entropy device, over either
 * transport (transport=, irq= as for virtio-blk), and checks they are not all equal.
 * Prints "virtio-rng: N bytes, M distinct" and "virtio-rng: all ok"; exit value 0, or the
 * step that failed.
 */
#include "virtio.h"

static uint8_t buf[4096] __attribute__((aligned(4096)));
static struct vdev dev;

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  int transport = cmdline_is("transport", "pci") ? T_PCI : cmdline_is("transport", "mmio") ? T_MMIO : -1;
  if (virtio_find(&dev, VIRTIO_ID_RNG, transport) != 0) {
    puts("virtio-rng: FAILED no virtio entropy device found\n");
    return 2;
  }
  enum vwait wait = virtio_wait_from_cmdline(dev.transport);
  if (virtio_init(&dev, 0, wait) != 0) {
    puts("virtio-rng: FAILED device initialisation\n");
    return 3;
  }
  uint32_t want = cmdline_u32("n", 256);
  if (want > sizeof buf) want = sizeof buf;
  uint32_t got = 0;
  /* The device may fill less than asked: ask again for the rest. */
  for (int tries = 0; got < want && tries < 64; tries++) {
    struct vbuf b = {buf + got, want - got, 1};
    int32_t n = virtio_request(&dev, &b, 1);
    if (n < 0) {
      puts("virtio-rng: FAILED no answer\n");
      return 4;
    }
    got += (uint32_t)n;
  }
  uint8_t seen[256] = {0};
  uint32_t distinct = 0;
  for (uint32_t i = 0; i < got; i++)
    if (!seen[buf[i]]++) distinct++;
  puts("virtio-rng: ");
  puts(virtio_transport_name(&dev));
  putc(' ');
  puts(virtio_wait_name(wait));
  putc(' ');
  put_dec(got);
  puts(" bytes, ");
  put_dec(distinct);
  puts(" distinct\n");
  if (got < want) return 5;
  if (distinct < 2) {
    puts("virtio-rng: FAILED all bytes equal\n");
    return 6;
  }
  puts("virtio-rng: all ok\n");
  return 0;
}
