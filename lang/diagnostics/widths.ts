/**
 * Display widths of source text for the renderer, with `string-width` (East Asian Width,
 * emoji, grapheme clusters) loaded only for text that needs it: a printable ASCII
 * character is one column, and loading the library costs more than rendering an error
 * does (~30 ms at start-up), so a run that renders ASCII lines never loads it.
 *
 * `renderDiagnostics` stays synchronous: a line with anything else throws WidthsNotLoaded
 * until `loadWidths()` has run; callers use `withWidthsOnDemand(() => render(...))`, which
 * loads the library and renders again when that happens (rendering is pure, so the second
 * run is what one run with the library loaded from the start gives).
 */

type WidthOf = (text: string) => number;
let stringWidth: WidthOf | null = null;

/** A cluster other than printable ASCII was measured before `loadWidths()`. */
export class WidthsNotLoaded extends Error {
  constructor() {
    super("string-width is not loaded: render through withWidthsOnDemand");
    this.name = "WidthsNotLoaded";
  }
}

/** Loads string-width (once). */
export async function loadWidths(): Promise<void> {
  stringWidth ??= (await import("string-width")).default as WidthOf;
}

/** Whether string-width has been loaded (for the tests of the ASCII path). */
export function widthsLoaded(): boolean {
  return stringWidth !== null;
}

/**
 * Terminal width of one grapheme cluster (a character as the user sees it: an emoji with
 * its modifiers or ZWJ sequence, a letter with its combining marks): 2 for East Asian
 * wide characters and emoji, 0 for marks and other invisible clusters, 1 for printable
 * ASCII.
 */
export function clusterWidth(cluster: string): number {
  if (cluster.length === 1) {
    const c = cluster.charCodeAt(0);
    if (c >= 0x20 && c < 0x7f) return 1;
  }
  if (stringWidth === null) throw new WidthsNotLoaded();
  return stringWidth(cluster);
}

/** Runs `work`; if it met text that needs string-width, loads it and runs `work` again. */
export async function withWidthsOnDemand<T>(work: () => T): Promise<T> {
  try {
    return work();
  } catch (e) {
    if (!(e instanceof WidthsNotLoaded)) throw e;
  }
  await loadWidths();
  return work();
}
