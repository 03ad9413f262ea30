/**
 * The boot payload: the protocol is known and takes the options given (E0502), the path
 * names a file (E0501; W0006 when it is not there yet), the command line fits (E0502), a
 * flat binary has a load address (E0303) and, once RAM is known, loads and enters inside
 * it (E0502). Paths become Plan paths (relative to the main file); `--kernel` and
 * `--cmdline` win over the file.
 */
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error, warning } from "../diagnostics/make.ts";
import { type EvalContext, hex, type LangHost } from "../program.ts";
import { BOOT_LAYOUT, BOOT_OPTIONS, BOOT_OPTIONS_BY_PROTOCOL, BOOT_PROTOCOLS } from "../specs.ts";
import { suggest } from "../suggest.ts";
import type { CheckOptions, RamRange, ResolvedBoot } from "./model.ts";
import type { Merged } from "./merge.ts";
import { rebaseOnMain } from "./paths.ts";
import { evalProps } from "./values.ts";

export function resolveBoot(
  m: Merged,
  ctx: EvalContext,
  host: LangHost,
  opts: CheckOptions,
  nameSpan: Span,
  where: string,
  diags: Diags,
  mainFile: string,
): ResolvedBoot | null {
  if (!m.boot) {
    if (opts.kernel) {
      return {
        protocol: "linux",
        path: opts.kernel,
        cmdline: opts.cmdline ?? "",
        initrd: null,
        load: null,
        entry: null,
        mode: null,
        span: nameSpan,
      };
    }
    diags.push(
      error(
        "E0402",
        `${where} has nothing to boot`,
        nameSpan,
        'add `boot pvh "guest.elf"` (or `boot linux "bzImage"`, `boot flat "x.bin" { load 0x10_0000 }`)',
      ),
    );
    return null;
  }
  const node = m.boot.node;
  const proto = node.protocol.name;
  if (!(BOOT_PROTOCOLS as readonly string[]).includes(proto)) {
    const s = suggest(proto, BOOT_PROTOCOLS);
    diags.push(
      error(
        "E0502",
        `unknown boot protocol \`${proto}\``,
        node.protocol.span,
        s
          ? `did you mean \`${s}\`? (one of ${BOOT_PROTOCOLS.join(", ")})`
          : `use one of ${BOOT_PROTOCOLS.join(", ")}`,
        [],
        s ? [{ title: `change to \`${s}\``, span: node.protocol.span, replacement: s }] : undefined,
      ),
    );
    // The options are still checked by name (a misspelt one is its own error).
    evalProps(m.boot.options, BOOT_OPTIONS, ctx, "boot", node.span);
    return null;
  }
  const protocol = proto as ResolvedBoot["protocol"];
  const v = evalProps(m.boot.options, BOOT_OPTIONS, ctx, "boot", node.span);
  const allowed = BOOT_OPTIONS_BY_PROTOCOL[protocol];
  for (const [name, p] of m.boot.options) {
    if (name in BOOT_OPTIONS && !allowed.includes(name)) {
      diags.push(
        error(
          "E0502",
          `\`${name}\` does not apply to \`boot ${protocol}\``,
          p.name.span,
          `\`boot ${protocol}\` takes ${allowed.join(", ")}`,
        ),
      );
    }
  }
  const path = node.path.value;
  if (path === "" || path.endsWith("/")) {
    diags.push(
      error(
        "E0501",
        path === ""
          ? "the boot payload path is empty"
          : `the boot payload \`${path}\` names a directory`,
        node.path.span,
        "name the kernel or guest binary file",
      ),
    );
    return null;
  }
  const str = (k: string) => v.get(k)?.value as string | undefined;
  const big = (k: string) => v.get(k)?.value as bigint | undefined;
  const cmdline = opts.cmdline ?? str("cmdline") ?? "";
  if (cmdline.length + 1 > BOOT_LAYOUT.cmdline_max) {
    diags.push(
      error(
        "E0502",
        `the command line is ${cmdline.length} bytes; at most ${BOOT_LAYOUT.cmdline_max - 1} fit`,
        v.get("cmdline")?.span ?? node.span,
        "shorten it",
      ),
    );
  }
  const initrd = str("initrd") ?? null;
  let load: bigint | null = null;
  let entry: bigint | null = null;
  let mode: ResolvedBoot["mode"] = null;
  if (protocol === "flat") {
    load = big("load") ?? null;
    if (load === null && !m.boot.options.has("load")) {
      diags.push(
        error(
          "E0303",
          "`boot flat` needs `load`",
          node.span,
          "add `load 0x10_0000` (where the binary goes in guest memory)",
        ),
      );
    }
    entry = big("entry") ?? load;
    mode = (str("mode") as ResolvedBoot["mode"]) ?? "protected";
  }
  // Plan paths are relative to the Plan's source (the main file): a path written in an
  // imported file elsewhere is re-expressed from the main file's directory. Each path is
  // relative to the file that wrote it: an `initrd` inherited from a base machine in
  // another folder keeps that folder even when this machine's `boot` line replaces the path.
  const pathOrigin = node.path.span.file;
  const initrdOrigin = v.get("initrd")?.origin ?? pathOrigin;
  const rebase = (p: string, from: string) => rebaseOnMain(host, mainFile, from, p);
  const finalPath = opts.kernel ?? rebase(path, pathOrigin);
  // W0006: the payload (and initrd) should exist when checking; booting makes it an error.
  const missing = (p: string, span: Span, what: string, from: string | null) => {
    const resolved = from === null ? p : host.resolve(from, p);
    if (!host.fileExists(resolved)) {
      diags.push(
        warning(
          "W0006",
          `the ${what} \`${p}\` was not found`,
          span,
          from === null
            ? "the path given with --kernel is used as is"
            : `looked for ${resolved}; paths are relative to this file. Build it before booting`,
        ),
      );
    }
  };
  missing(
    opts.kernel ?? path,
    node.path.span,
    "boot payload",
    opts.kernel !== undefined ? null : pathOrigin,
  );
  if (initrd !== null) missing(initrd, v.get("initrd")!.span, "initrd", initrdOrigin);
  return {
    protocol,
    path: finalPath,
    cmdline,
    initrd: initrd === null ? null : rebase(initrd, initrdOrigin),
    load,
    entry,
    mode,
    span: node.span,
  };
}

/**
 * A flat binary loads and starts inside RAM, and a real-mode entry is reachable with IP
 * alone (E0502). Needs the machine's final RAM, so it runs with the layout checks.
 */
export function checkFlatEntry(boot: ResolvedBoot, ram: RamRange[], diags: Diags) {
  if (boot.protocol !== "flat") return;
  const inRam = (a: bigint) => ram.some((r) => a >= r.base && a < r.base + r.size);
  if (boot.load !== null && !inRam(boot.load)) {
    diags.push(
      error(
        "E0502",
        `the load address ${hex(boot.load)} is not in RAM`,
        boot.span,
        "load flat binaries into RAM, e.g. at 0x10_0000",
      ),
    );
  } else if (boot.entry !== null && !inRam(boot.entry)) {
    diags.push(
      error(
        "E0502",
        `the entry point ${hex(boot.entry)} is not in RAM`,
        boot.span,
        "the entry is an address inside the loaded binary",
      ),
    );
  } else if (boot.mode === "real" && boot.entry !== null && boot.entry > 0xffffn) {
    // The vCPU starts with CS base 0, so IP alone must reach the entry.
    diags.push(
      error(
        "E0502",
        `a real-mode entry must be below 0x1_0000, not ${hex(boot.entry)}`,
        boot.span,
        "load real-mode code low, e.g. `load 0x7C00`",
      ),
    );
  }
}
