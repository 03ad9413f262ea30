/**
 * The SVG for bench/results/hole.svg: three panels of horizontal bars with their values
 * written out — per-read cost by strategy and VMM, whole-process time vs QEMU, and host
 * memory (Pss beside Rss) for the 256 MiB ECAM window. Plain SVG, no scripts, no fonts
 * beyond the generic families, readable at README width.
 */

interface Doc {
  date: string;
  command: string;
  per_read_us: Record<string, Record<string, number>>;
  per_read_best_us: Record<string, Record<string, number>>;
  per_read_run_loop_best_us: Record<string, Record<string, number>>;
  whole_process_ms: Record<string, Record<string, number>>;
  memory_kib: Record<string, Record<string, Record<string, number>>>;
}

interface Bar {
  label: string;
  value: number;
  text: string;
  color: string;
}

const COLORS: Record<string, string> = {
  vmdesc: "#2b6cb0",
  c: "#718096",
  qemu: "#c05621",
  pss: "#2b6cb0",
  rss: "#cbd5e0",
};
const NAMES: Record<string, string> = { vmdesc: "vmdesc", c: "C VMM", qemu: "QEMU microvm" };
const CONFIGS: Record<string, string> = { trap: "trap", shadow: "shadow", ram: "RAM control" };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const W = 820;
const LABEL_W = 210;
const BAR_H = 16;
const GAP = 5;

function panel(
  y: number,
  title: string,
  note: string,
  groups: { name: string; bars: Bar[] }[],
): [string, number] {
  const parts: string[] = [];
  parts.push(`<text x="16" y="${y + 16}" font-size="15" font-weight="bold">${esc(title)}</text>`);
  parts.push(`<text x="16" y="${y + 33}" font-size="11" fill="#4a5568">${esc(note)}</text>`);
  y += 44;
  const max = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value)), 1e-9);
  const scale = (W - LABEL_W - 250) / max; // room for the value text
  for (const g of groups) {
    parts.push(
      `<text x="16" y="${y + 12}" font-size="12" font-weight="bold" fill="#2d3748">${
        esc(g.name)
      }</text>`,
    );
    y += 16;
    for (const b of g.bars) {
      const w = Math.max(1, b.value * scale);
      parts.push(
        `<text x="${LABEL_W - 8}" y="${y + BAR_H - 4}" font-size="12" text-anchor="end">${
          esc(b.label)
        }</text>`,
      );
      parts.push(
        `<rect x="${LABEL_W}" y="${y}" width="${
          w.toFixed(1)
        }" height="${BAR_H}" fill="${b.color}" rx="2"/>`,
      );
      parts.push(
        `<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + BAR_H - 4}" font-size="12">${
          esc(b.text)
        }</text>`,
      );
      y += BAR_H + GAP;
    }
    y += 6;
  }
  return [parts.join("\n"), y + 10];
}

export function renderChart(doc: Doc): string {
  const body: string[] = [];
  let y = 10;
  body.push(
    `<text x="16" y="${
      y + 18
    }" font-size="18" font-weight="bold">vmdesc PCI hole strategies: trap vs shadow</text>`,
  );
  body.push(
    `<text x="16" y="${y + 36}" font-size="11" fill="#4a5568">${
      esc(
        `${doc.command} · ${
          doc.date.slice(0, 16).replace("T", " ")
        } UTC · software KVM (kvm_pvm): every guest instruction is emulated`,
      )
    }</text>`,
  );
  y += 48;

  const per: { name: string; bars: Bar[] }[] = [];
  for (const c of ["trap", "shadow", "ram"]) {
    const bars: Bar[] = [];
    for (const v of ["vmdesc", "c", "qemu"]) {
      const x = doc.per_read_best_us[v]?.[c];
      if (x === undefined) continue;
      const loop = doc.per_read_run_loop_best_us[v]?.[c];
      bars.push({
        label: NAMES[v],
        value: Math.max(x, 0),
        text: `${x.toFixed(2)} µs` + (loop === undefined ? "" : ` (run loop ${loop.toFixed(2)})`),
        color: COLORS[v],
      });
    }
    if (bars.length) {
      per.push({
        name: CONFIGS[c] +
          (c === "shadow"
            ? " (no exits for absent functions)"
            : c === "ram"
            ? " (same loop over RAM: the floor)"
            : " (every read exits)"),
        bars,
      });
    }
  }
  let part: string;
  [part, y] = panel(
    y,
    "Per ECAM read (µs, lower is better)",
    "(t10 − t1) / (9 × 8192), fastest of N whole-process wall times; in brackets the same from each VMM's own run-loop clock",
    per,
  );
  body.push(part);

  const whole: { name: string; bars: Bar[] }[] = [];
  for (const p of ["1pass", "10pass"]) {
    const bars: Bar[] = [];
    const add = (v: string, c: string, label: string) => {
      const x = doc.whole_process_ms[v]?.[`${c}_${p}`];
      if (x !== undefined) {
        bars.push({ label, value: x, text: `${x.toFixed(0)} ms`, color: COLORS[v] });
      }
    };
    add("vmdesc", "shadow", "vmdesc (shadow)");
    add("vmdesc", "trap", "vmdesc (trap)");
    add("c", "shadow", "C VMM (shadow)");
    add("c", "trap", "C VMM (trap)");
    add("qemu", "trap", "QEMU microvm");
    whole.push({
      name: p === "1pass" ? "1-pass scan (8192 reads)" : "10-pass scan (81920 reads)",
      bars,
    });
  }
  [part, y] = panel(
    y,
    "Whole process, start to exit (ms)",
    "median wall time of the VMM process, guest boot and teardown included",
    whole,
  );
  body.push(part);

  const mem: { name: string; bars: Bar[] }[] = [];
  const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
  for (const v of ["vmdesc", "c", "qemu"]) {
    const m = doc.memory_kib[v];
    if (!m) continue;
    const bars: Bar[] = [];
    const sh = m.shadow;
    if (sh) {
      bars.push({
        label: "shadow: window Pss",
        value: sh.window_pss_kib / 1024,
        text: mib(sh.window_pss_kib),
        color: COLORS.pss,
      });
      bars.push({
        label: "shadow: window Rss",
        value: sh.window_rss_kib / 1024,
        text: `${mib(sh.window_rss_kib)} (each alias again)`,
        color: COLORS.rss,
      });
    }
    for (const c of ["trap", "shadow"]) {
      if (m[c]) {
        bars.push({
          label: `${c}: process Pss`,
          value: m[c].pss_kib / 1024,
          text: mib(m[c].pss_kib),
          color: COLORS[v],
        });
      }
    }
    mem.push({ name: NAMES[v], bars });
  }
  [part, y] = panel(
    y,
    "VMM host memory with the 256 MiB ECAM window scanned (MiB)",
    "Pss shares each aliased 0xff page among its mappings; Rss counts it once per alias (smaps)",
    mem,
  );
  body.push(part);

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${body.join("\n")}
</svg>
`;
}
