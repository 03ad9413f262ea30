/**
 * Numbers from the OASIS virtio 1.2 specification that the transports, the queues and the
 * devices share. Section numbers refer to virtio-v1.2-cs01.
 */

/** Device status bits (2.1). */
export const STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Reserved feature bits (6) as bit numbers. */
export const F = {
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

export const bit = (n: number): bigint => 1n << BigInt(n);

/** Split virtqueue descriptor flags (2.7.5) and ring flags (2.7.6, 2.7.8). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/** The largest queue size a split virtqueue may have (2.7). */
export const MAX_QUEUE_SIZE = 32768;

/** MSI-X: "no vector" for config_msix_vector / queue_msix_vector (4.1.5.1.2). */
export const NO_VECTOR = 0xffff;

/** struct virtio_pci_common_cfg field offsets (4.1.4.3). */
export const COMMON = {
  DEVICE_FEATURE_SELECT: 0x00,
  DEVICE_FEATURE: 0x04,
  DRIVER_FEATURE_SELECT: 0x08,
  DRIVER_FEATURE: 0x0c,
  CONFIG_MSIX_VECTOR: 0x10,
  NUM_QUEUES: 0x12,
  DEVICE_STATUS: 0x14,
  CONFIG_GENERATION: 0x15,
  QUEUE_SELECT: 0x16,
  QUEUE_SIZE: 0x18,
  QUEUE_MSIX_VECTOR: 0x1a,
  QUEUE_ENABLE: 0x1c,
  QUEUE_NOTIFY_OFF: 0x1e,
  QUEUE_DESC: 0x20,
  QUEUE_DRIVER: 0x28,
  QUEUE_DEVICE: 0x30,
  QUEUE_NOTIFY_DATA: 0x38,
  QUEUE_RESET: 0x3a,
  /** Size of the structure as of virtio 1.2. */
  SIZE: 0x3c,
} as const;

/** virtio_pci_cap cfg_type values (4.1.4). */
export const PCI_CAP = {
  COMMON_CFG: 1,
  NOTIFY_CFG: 2,
  ISR_CFG: 3,
  DEVICE_CFG: 4,
  PCI_CFG: 5,
} as const;

/** virtio-mmio version 2 register offsets (4.2.2). */
export const MMIO = {
  MAGIC: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  QUEUE_RESET: 0x0c0,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" in little-endian. */
export const MMIO_MAGIC = 0x74726976;
/** The vendor ID virtio-mmio devices report: QEMU's ("QEMU" as Linux prints it). */
export const MMIO_VENDOR_ID = 0x554d4551;

/** Interrupt causes: the ISR byte (PCI INTx) and virtio-mmio's InterruptStatus agree. */
export const INT_USED_BUFFER = 1;
export const INT_CONFIG_CHANGE = 2;
