/*
 * virtio-hostile: a driver that breaks the rules on purpose, one way per run (attack=NAME
 * on the command line), against a virtio block device. After the attack it checks that the
 * device answered as documented (runtime/devices/virtio/core.ts):
 *
 *   the request fails   desc-hole desc-rom desc-past-end desc-4g loop chain-order
 *                       indirect-nested indirect-len: the chain comes back with used
 *                       length 0 and its status byte untouched
 *   NEEDS_RESET         qsize ring-rom ring-hole ring-past-end notify-early avail-jump
 *                       head-index status-clear: the device sets NEEDS_RESET (0x40) and
 *                       serves nothing until reset
 *
 * then resets the device where needed, reads sector 0 (it must still work) and writes the
 * test sector (sector=, as virtio-blk does), so the host can check the image changed only
 * there. Prints "hostile: NAME: ..." lines; exit value 0, or the step that failed.
 * Polling only: interrupts add nothing here.
 */
#include "virtio.h"

#define T_IN 0
#define T_OUT 1
#define NEEDS_RESET 0x40
#define F_INDIRECT (1ull << 28)

static struct {
  uint32_t type, reserved;
  uint64_t sector;
} hdr __attribute__((aligned(64)));
static uint8_t data[4096] __attribute__((aligned(4096)));
static volatile uint8_t status __attribute__((aligned(64)));
static struct virtq_desc table[4] __attribute__((aligned(16)));
static struct virtq_desc table2[2] __attribute__((aligned(16)));
static struct vdev dev;
static uint32_t ram_end, hole, rom;

static uint32_t fail(uint32_t step, const char *what) {
  puts("hostile: FAILED ");
  puts(what);
  putc('\n');
  return step;
}

static uint32_t addr(const volatile void *p) { return (uint32_t)(uintptr_t)p; }

static void desc(struct virtq_desc *t, int i, uint32_t a, uint32_t len, uint16_t flags, uint16_t next) {
  t[i].addr = a;
  t[i].len = len;
  t[i].flags = flags;
  t[i].next = next;
}

/* Waits (polling) for the next used entry; its length, or -1 if none comes. */
static int64_t next_used(void) {
  struct vq *q = &dev.q;
  for (uint32_t spin = 0; virtio_used_idx(&dev) == q->last_used; spin++) {
    if (spin > 20000000u) return -1;
    cpu_relax();
  }
  uint32_t len = *(volatile uint32_t *)(q->used + 8 + 8 * (q->last_used % q->size));
  q->last_used++;
  return len;
}

/* Offers descriptor 0 as it stands, notifies, and expects it back with nothing written. */
static uint32_t expect_failed_request(const char *name) {
  status = 0xff;
  virtio_offer(&dev, 0);
  virtio_notify(&dev);
  int64_t len = next_used();
  if (len != 0) return fail(30, "the bad chain was not returned with used length 0");
  if (status != 0xff) return fail(31, "the device wrote the status of a bad chain");
  puts("hostile: ");
  puts(name);
  puts(": the request failed alone (used length 0)\n");
  return 0;
}

static uint32_t expect_needs_reset(const char *name) {
  if (!(virtio_status(&dev) & NEEDS_RESET)) return fail(40, "no NEEDS_RESET");
  puts("hostile: ");
  puts(name);
  puts(": the device set NEEDS_RESET\n");
  return 0;
}

/* A request chain (header, data, status) into descriptors 0..2 with `data_addr`. */
static void request_chain(uint32_t type, uint32_t data_addr, uint32_t len, int write) {
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = 0;
  desc(dev.q.desc, 0, addr(&hdr), sizeof hdr, VIRTQ_DESC_F_NEXT, 1);
  desc(dev.q.desc, 1, data_addr, len, (uint16_t)((write ? VIRTQ_DESC_F_WRITE : 0) | VIRTQ_DESC_F_NEXT), 2);
  desc(dev.q.desc, 2, addr(&status), 1, VIRTQ_DESC_F_WRITE, 0);
}

static int is(const char *a) { return cmdline_is("attack", a); }

static uint32_t attack(void) {
  struct vq *q = &dev.q;
  uint64_t feats = F_INDIRECT;
  /* Attacks on the queue's setup or the status: before or instead of a normal init. */
  if (is("qsize") || is("ring-rom") || is("ring-hole") || is("ring-past-end") || is("notify-early")) {
    dev.wait = WAIT_POLL;
    if (virtio_negotiate(&dev, feats) != 0) return fail(20, "features");
    uint16_t size = is("qsize") ? 3 : 0;
    uint32_t d = is("ring-rom") ? rom : is("ring-past-end") ? ram_end - 64 : 0;
    uint32_t u = is("ring-hole") ? hole : 0;
    if ((is("ring-rom") && !rom) || (is("ring-hole") && !hole)) return fail(21, "no such place here");
    if (virtio_queue_setup(&dev, size, d, 0, u) != 0) return fail(22, "queue setup");
    if (is("notify-early")) {
      request_chain(T_IN, addr(data), 512, 1);
      virtio_offer(&dev, 0);
      virtio_notify(&dev);
      if (virtio_used_idx(&dev) != 0) return fail(23, "served before DRIVER_OK");
    }
    return expect_needs_reset(cmdline_is("attack", "qsize") ? "qsize" : is("ring-rom") ? "ring-rom"
                              : is("ring-hole") ? "ring-hole" : is("ring-past-end") ? "ring-past-end"
                                                                     : "notify-early");
  }
  if (virtio_init(&dev, feats, WAIT_POLL) != 0) return fail(3, "device initialisation");
  if (is("status-clear")) {
    virtio_set_status(&dev, 1); /* drop DRIVER, FEATURES_OK, DRIVER_OK */
    return expect_needs_reset("status-clear");
  }
  if (is("avail-jump")) {
    request_chain(T_IN, addr(data), 512, 1);
    q->avail[1] = (uint16_t)(q->avail_idx + 100);
    virtio_notify(&dev);
    return expect_needs_reset("avail-jump");
  }
  if (is("head-index")) {
    virtio_offer(&dev, 200);
    virtio_notify(&dev);
    return expect_needs_reset("head-index");
  }
  if (is("desc-hole")) {
    if (!hole) return fail(24, "no hole address");
    request_chain(T_IN, hole, 512, 1);
    return expect_failed_request("desc-hole");
  }
  if (is("desc-rom")) {
    if (!rom) return fail(25, "no read-only memory here");
    request_chain(T_IN, rom, 512, 1);
    return expect_failed_request("desc-rom");
  }
  if (is("desc-past-end")) {
    request_chain(T_IN, ram_end - 256, 512, 1);
    return expect_failed_request("desc-past-end");
  }
  if (is("desc-4g")) {
    request_chain(T_IN, 0x200000, 0xfffff000u, 1);
    return expect_failed_request("desc-4g");
  }
  if (is("loop")) {
    hdr.type = T_IN;
    hdr.sector = 0;
    desc(q->desc, 0, addr(&hdr), sizeof hdr, VIRTQ_DESC_F_NEXT, 1);
    desc(q->desc, 1, addr(data), 512, VIRTQ_DESC_F_NEXT, 0);
    return expect_failed_request("loop");
  }
  if (is("chain-order")) {
    desc(q->desc, 0, addr(&status), 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc(q->desc, 1, addr(&hdr), sizeof hdr, 0, 0);
    return expect_failed_request("chain-order");
  }
  if (is("indirect-nested") || is("indirect-len")) {
    hdr.type = T_IN;
    hdr.sector = 0;
    desc(table, 0, addr(&hdr), sizeof hdr, VIRTQ_DESC_F_NEXT, 1);
    desc(table, 1, addr(table2), sizeof table2, VIRTQ_DESC_F_INDIRECT, 0);
    desc(table2, 0, addr(data), 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc(table2, 1, addr(&status), 1, VIRTQ_DESC_F_WRITE, 0);
    uint32_t len = is("indirect-len") ? 40 : 32;
    desc(q->desc, 0, addr(table), len, VIRTQ_DESC_F_INDIRECT, 0);
    return expect_failed_request(is("indirect-len") ? "indirect-len" : "indirect-nested");
  }
  return fail(2, "unknown attack= (see virtio_hostile.c)");
}

/* After the attack: the device still serves a read and a write (after a reset if needed). */
static uint32_t still_works(void) {
  if (virtio_status(&dev) & NEEDS_RESET || !(virtio_status(&dev) & 4)) {
    if (virtio_init(&dev, 0, WAIT_POLL) != 0) return fail(50, "re-initialisation after reset");
    puts("hostile: reset the device\n");
  }
  struct vbuf bufs[3] = {{&hdr, sizeof hdr, 0}, {data, 512, 1}, {(const void *)&status, 1, 1}};
  hdr.type = T_IN;
  hdr.sector = 0;
  status = 0xff;
  if (virtio_request(&dev, bufs, 3) < 0 || status != 0) return fail(51, "read after the attack");
  if (!(data[0] == 'V' && data[1] == 'M' && data[2] == 'D')) return fail(52, "sector 0 changed");
  /* The valid write the host looks for in the image (virtio-blk's test pattern). */
  const char *mark = "vmdesc virtio-blk was here";
  for (int i = 0; i < 512; i++) data[i] = (uint8_t)(0xa5 ^ i);
  memcpy(data, mark, strlen(mark));
  hdr.type = T_OUT;
  hdr.sector = cmdline_u32("sector", 1);
  bufs[1].write = 0;
  status = 0xff;
  if (virtio_request(&dev, bufs, 3) < 0 || status != 0) return fail(53, "write after the attack");
  puts("hostile: the device still works\n");
  return 0;
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  /* The end of the RAM the guest starts in (the PVH memory map's RAM entries). */
  const struct hvm_start_info *si = start_info();
  if (si && si->memmap_paddr) {
    const struct hvm_memmap_table_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
    for (uint32_t i = 0; i < si->memmap_entries; i++)
      if (m[i].type == 1 && m[i].addr < 0x100000000ull && m[i].addr + m[i].size > ram_end)
        ram_end = (uint32_t)(m[i].addr + m[i].size);
  }
  if (!ram_end) return fail(1, "no memory map");
  if (virtio_find(&dev, VIRTIO_ID_BLOCK, -1) != 0) return fail(2, "no virtio block device");
  /* In the hole: the device's own registers (MMIO, not RAM); else nothing at 0xD000_0000. */
  hole = dev.transport == T_PCI ? (dev.common & ~0xfffu) : 0xd0000000u;
  /* Read-only memory: the ECAM window, which vmdesc's `shadow` hole maps read-only. */
  rom = dev.transport == T_PCI ? (dev.cfg & ~0xfffffu) : 0;
  uint32_t r = attack();
  if (r) return r;
  return still_works();
}
