/**
 * string-width is loaded only for text beyond ASCII (widths.ts): rendering ASCII lines
 * never loads it and gives exactly what the library gives; a wider line asks for it, and
 * `withWidthsOnDemand` renders it as if it had been loaded from the start.
 */
import stringWidth from "string-width";

const ROOT = new URL("../../", import.meta.url).pathname;

function equal(actual: unknown, expected: unknown, msg: string) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg}\nexpected: ${e}\nactual:   ${a}`);
}

/** Renders `text`'s one error in a fresh process: { loaded, out } (loaded: string-width). */
async function renderFresh(
  text: string,
  onDemand: boolean,
): Promise<{ loaded: boolean; out: string }> {
  const script = `
    import * as r from "./lang/diagnostics/render.ts";
    import { widthsLoaded } from "./lang/diagnostics/widths.ts";
    const text = ${JSON.stringify(text)};
    const at = text.indexOf("bogus");
    const d = { code: "E0302", severity: "error", message: "m", labels: [], hint: null,
      span: { file: "a.vmdesc", start: at, end: at + 5 } };
    const render = () => r.renderDiagnostics([d], () => text);
    let out;
    try {
      out = ${onDemand} ? await r.withWidthsOnDemand(render) : render();
    } catch (e) {
      out = "threw " + e.name;
    }
    console.log(JSON.stringify({ loaded: widthsLoaded(), out }));
  `;
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!o.success) throw new Error(new TextDecoder().decode(o.stderr));
  return JSON.parse(new TextDecoder().decode(o.stdout));
}

Deno.test("widths: printable ASCII is one column, as string-width says", async () => {
  const { clusterWidth, loadWidths } = await import("./widths.ts");
  for (let c = 0x20; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    equal(clusterWidth(ch), stringWidth(ch), `width of ${JSON.stringify(ch)}`);
  }
  await loadWidths();
  equal(clusterWidth("🚀"), 2, "an emoji once loaded");
});

Deno.test("widths: an ASCII error renders without loading string-width", async () => {
  const text = "machine m {\n  memory 64 MiB\n  bogus 1\n}\n";
  const lazy = await renderFresh(text, false);
  equal(lazy.loaded, false, "string-width loaded for ASCII");
  const eager = await renderFresh(text, true);
  equal(lazy.out, eager.out, "the same text as with every width known");
  if (!lazy.out.includes("  bogus 1\n  |   ^^^^^")) throw new Error(lazy.out);
});

Deno.test("widths: a wide line loads string-width on demand and the caret is right", async () => {
  const text = "machine m {\n  /* 🚀🚀 é */ bogus 1\n}\n";
  const plain = await renderFresh(text, false);
  equal(plain.out, "threw WidthsNotLoaded", "rendering wide text without the library");
  const lazy = await renderFresh(text, true);
  equal(lazy.loaded, true, "loaded on demand");
  // `/* ` 3 columns, two emoji 4, ` é ` 3, `*/ ` 3: `bogus` starts 13 columns after `/*`.
  const lines = lazy.out.split("\n");
  const src = lines.findIndex((l) => l.includes("bogus 1"));
  equal(lines[src + 1].indexOf("^"), lines[src].indexOf("/*") + 13, "caret column");
});
