/**
 * Shared pieces of the virtio guest tests: a fresh copy of the example disk image per run,
 * a vmdesc boot of examples/guests/virtio.vmdesc with any guest and command line, and the
 * check that an image changed only where the guest wrote.
 */
import { compile, type Plan } from "../../lang/mod.ts";
import { DenoHost } from "../../host/disk_host.ts";
import { createMachine, type RunResult } from "../../runtime/mod.ts";
import { buildGuests, diskImageBytes, guestPath } from "../../examples/guests/build.ts";

const VMDESC = decodeURIComponent(
  new URL("../../examples/guests/virtio.vmdesc", import.meta.url).pathname,
);

/** The mark virtio-blk writes at the start of its test sector (then 0xA5 ^ offset). */
export const MARK = "vmdesc virtio-blk was here";

/** The sector virtio-blk's test writes, as it writes it. */
export function markedSector(): Uint8Array {
  const s = new Uint8Array(512);
  for (let i = 0; i < 512; i++) s[i] = (0xa5 ^ i) & 0xff;
  s.set(new TextEncoder().encode(MARK));
  return s;
}

/** A temporary copy of the example disk; removed when disposed. */
export function tempImage(): { path: string; original: Uint8Array } & Disposable {
  const path = Deno.makeTempFileSync({ prefix: "vmdesc-disk-", suffix: ".img" });
  const original = diskImageBytes();
  Deno.writeFileSync(path, original);
  return {
    path,
    original,
    [Symbol.dispose]: () => Deno.removeSync(path),
  };
}

/**
 * The image equals `original` except that `sector` (when given) holds `written`: whatever
 * the guest did, nothing else changed, and the size did not.
 */
export function assertImage(
  path: string,
  original: Uint8Array,
  sector?: number,
  written?: Uint8Array,
) {
  const now = Deno.readFileSync(path);
  if (now.length !== original.length) {
    throw new Error(`image size changed: ${original.length} → ${now.length}`);
  }
  const want = original.slice();
  if (sector !== undefined && written) want.set(written, sector * 512);
  for (let i = 0; i < want.length; i++) {
    if (now[i] !== want[i]) {
      throw new Error(
        `image byte ${i} (sector ${Math.floor(i / 512)}) is 0x${now[i].toString(16)}, expected 0x${
          want[i].toString(16)
        }`,
      );
    }
  }
}

export interface VirtioRun {
  plan: Plan;
  result: RunResult;
  output: string;
  warnings: string[];
}

/**
 * Boots `machine` of examples/guests/virtio.vmdesc with `guest` and `cmdline` on vmdesc,
 * its disks backed by `image` (`readonly` as asked); `edit` may change the Plan first.
 */
export async function bootVirtio(opts: {
  machine: string;
  /** The guest to boot instead of the machine's own payload. */
  guest?: string;
  /** The .vmdesc file (default examples/guests/virtio.vmdesc). */
  file?: string;
  cmdline?: string;
  image?: string;
  readonly?: boolean;
  timeout?: number;
  edit?: (plan: Plan) => void;
}): Promise<VirtioRun> {
  await buildGuests(opts.guest ? [opts.guest] : ["virtio-blk", "virtio-rng"]);
  const host = new DenoHost();
  const file = opts.file ?? VMDESC;
  const r = compile(host.readFile(file)!, {
    file,
    host,
    machine: opts.machine,
    ...(opts.guest ? { kernel: guestPath(opts.guest) } : {}),
    ...(opts.cmdline !== undefined ? { cmdline: opts.cmdline } : {}),
  });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => `${d.code} ${d.message}`).join("; "));
  const plan = r.plans.get(opts.machine)!;
  for (const entry of [...plan.devices, ...plan.pci]) {
    const b = entry.virtio?.backing;
    if (b?.kind !== "file") continue;
    if (opts.image) b.path = opts.image;
    if (opts.readonly !== undefined) b.readonly = opts.readonly;
  }
  opts.edit?.(plan);
  const chunks: string[] = [];
  const warnings: string[] = [];
  const dec = new TextDecoder();
  const m = await createMachine(plan, {
    serial: (bytes) => chunks.push(dec.decode(bytes, { stream: true })),
    warn: (w) => warnings.push(w),
  });
  try {
    const result = await m.run({ timeout: opts.timeout ?? 30 });
    return { plan, result, output: chunks.join(""), warnings };
  } finally {
    m.close();
  }
}
