/**
 * The E1012/E1013 fixes tell what `boot pvh` really accepts: besides a PVH ELF, a bzImage
 * whose vmlinux vmdesc extracts (runtime/boot/pvh_kernel.ts). A reader who hits E1013 with
 * a vmlinuz under `boot linux`, or E1012 with one under `boot pvh`, learns both routes.
 */
import { DOC_URL, sections } from "../../host/explanations.ts";

const doc = sections(await Deno.readTextFile(DOC_URL));

function fixOf(code: string): string {
  const text = doc.get(code)?.text ?? "";
  const i = text.indexOf("**Fix:**");
  if (i < 0) throw new Error(`${code}: no **Fix:** paragraph`);
  return text.slice(i).replace(/\s+/g, " ");
}

for (const code of ["E1012", "E1013"]) {
  Deno.test(`${code} fix: \`boot pvh\` takes a bzImage (vmlinux extracted, PVH note entered)`, () => {
    const fix = fixOf(code);
    for (const want of [/`boot pvh`/, /bzImage/, /vmlinux/, /PVH note/, /lz4/, /gzip/]) {
      if (!want.test(fix)) throw new Error(`${code}: the fix does not mention ${want}: ${fix}`);
    }
  });
}
