/*
 * A tiny virtio 1.x driver for the test guests: it finds devices the way an OS does (PCI
 * functions by scanning ECAM, whose base comes from `ecam=`, the ACPI MCFG or the DSDT's
 * _CBA; virtio-mmio devices from `virtio_mmio.device=` on the command line or LNRO0005
 * devices in the DSDT), assigns BARs firmware left unassigned (from the PCI root bridge's
 * _CRS window), negotiates features, sets up split virtqueues, and waits for completions
 * by polling, by MSI-X or by INTx / an IOAPIC line. The same guest runs under vmdesc and
 * QEMU microvm: nothing in here knows either's addresses.
 */
#ifndef VMDESC_GUEST_VIRTIO_H
#define VMDESC_GUEST_VIRTIO_H

#include "lib.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

/* How the driver learns that a request is done. */
enum vwait { WAIT_POLL, WAIT_MSIX, WAIT_INTX };

enum vtransport { T_PCI, T_MMIO };

#define VQ_MAX 16

struct vq {
  uint16_t index;
  uint16_t size;
  uint16_t avail_idx;  /* next free slot in the available ring (ours) */
  uint16_t last_used;  /* used entries seen */
  struct virtq_desc *desc;
  volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
  volatile uint8_t *used;   /* flags, idx, ring[size] of (id u32, len u32), avail_event */
  uint32_t notify_addr;
};

struct vdev {
  enum vtransport transport;
  uint16_t type;
  /* PCI */
  uint32_t bdf;  /* bus << 8 | dev << 3 | fn */
  uint32_t cfg;  /* ECAM address of the function's config space */
  uint32_t common, notify, isr, devcfg, notify_mult, msix_table;
  uint32_t msix_cap;
  /* MMIO */
  uint32_t base;
  /* interrupts */
  uint32_t gsi;        /* MMIO line or PCI INTx GSI; 0xffffffff = unknown */
  int level, active_low;
  enum vwait wait;
  uint64_t features;   /* negotiated */
  struct vq q;
};

/* Finds the first device of `type` on `transport` (-1: either; PCI first). 0 = found. */
int virtio_find(struct vdev *d, uint16_t type, int transport);
/* Reset, acknowledge, negotiate (VERSION_1 plus `want` if offered), set up queue 0, DRIVER_OK.
 * Returns 0, or a negative step number that failed. */
int virtio_init(struct vdev *d, uint64_t want, enum vwait wait);
/* The device-specific configuration (little-endian), `size` bytes at `off`. */
uint32_t virtio_config(struct vdev *d, uint32_t off, int size);
uint8_t virtio_status(struct vdev *d);
/* The configuration generation (it moves when the device's configuration changes). */
uint32_t virtio_config_generation(struct vdev *d);
/* The interrupt status (bit 0 used buffers, bit 1 configuration change), acknowledged. */
uint32_t virtio_take_isr(struct vdev *d);
void virtio_set_status(struct vdev *d, uint8_t s);

/* One request: `n` buffers (addr, len, writable) as a chain; waits for it to be used.
 * Returns the used length, or -1 on timeout. */
struct vbuf {
  const void *addr;
  uint32_t len;
  int write;
};
int32_t virtio_request(struct vdev *d, const struct vbuf *bufs, int n);
/* Lower level: add a chain and notify; wait for the next used entry (its length in *len). */
uint16_t virtio_submit(struct vdev *d, const struct vbuf *bufs, int n);
int virtio_wait(struct vdev *d, uint32_t *len);
void virtio_notify(struct vdev *d);

/* Interrupts taken so far (MSI-X or line). */
extern volatile uint32_t virtio_irqs;

const char *virtio_transport_name(const struct vdev *d);
const char *virtio_wait_name(enum vwait w);
/* "poll", "msix", "intx" from `irq=` on the command line (default: msix on PCI, intx on MMIO). */
enum vwait virtio_wait_from_cmdline(enum vtransport t);

/* The steps of virtio_init, for the hostile guest: reset + features (0 or negative), and
 * queue 0 with a given size and rings (0 = the driver's own). */
int virtio_negotiate(struct vdev *d, uint64_t want);
int virtio_queue_setup(struct vdev *d, uint16_t size, uint32_t desc, uint32_t avail, uint32_t used);
/* Puts `head` in the available ring (no notify); the device's used index. */
void virtio_offer(struct vdev *d, uint16_t head);
uint16_t virtio_used_idx(struct vdev *d);

/* More than one queue (virtio-console: receiveq0 and transmitq0). Each queue has its own
 * `struct vq` and ring memory; one chain in flight per queue (descriptors from 0). */
struct vq_mem {
  struct virtq_desc desc[VQ_MAX] __attribute__((aligned(4096)));
  uint16_t avail[3 + VQ_MAX] __attribute__((aligned(64)));
  uint8_t used[6 + 8 * VQ_MAX] __attribute__((aligned(64)));
};
/* Like virtio_init, with queues 0..n-1 set up in qs[i] on mem[i] (MSI-X: every queue on
 * vector 1). Returns 0, or a negative step number that failed. */
int virtio_init_queues(struct vdev *d, uint64_t want, enum vwait wait, int n, struct vq *qs,
                       struct vq_mem *mem);
/* Adds a chain to queue `index` and notifies; virtio_wait_queue waits for its next used
 * entry (sleeping in HLT unless polling) and returns 0 with the used length in *len. */
void virtio_submit_queue(struct vdev *d, struct vq *q, uint16_t index, const struct vbuf *bufs, int n);
int virtio_wait_queue(struct vdev *d, struct vq *q, uint32_t *len);
/* More queues than queue 0 (a network device's receive and transmit queues): queue `index`
 * on the given rings with `size` entries (at most the device's maximum), MSI-X `vector`
 * (0xffff: none), described in *q. 0, or negative. */
int virtio_queue_setup_at(struct vdev *d, uint16_t index, struct vq *q, uint16_t size, uint32_t desc,
                          uint32_t avail, uint32_t used, uint16_t vector);
void virtio_notify_queue(struct vdev *d, struct vq *q);

/* Raw access for the hostile guest. */
uint32_t vpci_cfg_read32(const struct vdev *d, uint32_t reg);
void vpci_cfg_write16(const struct vdev *d, uint32_t reg, uint16_t v);
void vcommon_write(struct vdev *d, uint32_t off, int size, uint32_t v);
uint32_t vcommon_read(struct vdev *d, uint32_t off, int size);

#endif
