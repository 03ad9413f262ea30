/*
 * blk-writer: writes sectors of a virtio block device in a loop, for ever, and reports
 * each write only after the device completed it with status OK: `w SECTOR SEQ` on COM1.
 * The soak's in-flight test (tests/soak/) closes the machine from the host in the middle
 * of this loop and then checks that every write the guest reported is in the image file.
 *
 * Write SEQ (1, 2, ...) goes to sector 1 + SEQ % (capacity - 1), 512 bytes: SEQ and the
 * sector as little-endian u32s, then byte i = (SEQ * 7 + i) & 0xff. Polling, no interrupts.
 * Command line: what virtio.c reads to find the device (transport=pci|mmio).
 */
#include "virtio.h"

#define T_OUT 1

static struct {
  uint32_t type, reserved;
  uint64_t sector;
} hdr __attribute__((aligned(64)));
static uint8_t data[512] __attribute__((aligned(512)));
static volatile uint8_t status __attribute__((aligned(64)));
static struct vdev dev;

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  serial_init();
  int transport = cmdline_is("transport", "mmio") ? T_MMIO : cmdline_is("transport", "pci") ? T_PCI : -1;
  if (virtio_find(&dev, VIRTIO_ID_BLOCK, transport) != 0) {
    puts("blk-writer: no virtio block device\n");
    return 2;
  }
  if (virtio_init(&dev, 0, WAIT_POLL) != 0) {
    puts("blk-writer: initialisation failed\n");
    return 3;
  }
  uint32_t capacity = virtio_config(&dev, 0, 4);
  if (capacity < 2) return 4;
  puts("blk-writer: writing\n");
  for (uint32_t seq = 1;; seq++) {
    uint32_t sector = 1 + seq % (capacity - 1);
    *(uint32_t *)&data[0] = seq;
    *(uint32_t *)&data[4] = sector;
    for (uint32_t i = 8; i < 512; i++) data[i] = (uint8_t)(seq * 7 + i);
    hdr.type = T_OUT;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xff;
    struct vbuf bufs[3] = {{&hdr, sizeof hdr, 0}, {data, 512, 0}, {(const void *)&status, 1, 1}};
    if (virtio_request(&dev, bufs, 3) < 0 || status != 0) {
      puts("blk-writer: write failed\n");
      return 5;
    }
    puts("w ");
    put_dec(sector);
    putc(' ');
    put_dec(seq);
    putc('\n');
  }
}
