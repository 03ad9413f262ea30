/**
 * Modules of lang/ and runtime/ stay small enough to read (issue 13): a module over LIMIT
 * lines says at its top why it is one file (a "Why one file" paragraph in its header
 * comment), or it is split. Test files are left out: their length is the number of cases
 * they hold, not a module someone has to understand at once.
 */
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const LIMIT = 600;

function modules(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(ROOT + dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...modules(path));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(path);
  }
  return out;
}

Deno.test("file size: every long module of lang/ and runtime/ says why it is one file", () => {
  const unexplained: string[] = [];
  for (const path of [...modules("lang"), ...modules("runtime")].sort()) {
    const text = Deno.readTextFileSync(ROOT + path);
    const lines = text.split("\n").length - 1;
    if (lines <= LIMIT) continue;
    const header = text.startsWith("/**") ? text.slice(0, text.indexOf("*/")) : "";
    if (!/Why one file/.test(header)) unexplained.push(`${path}: ${lines} lines`);
  }
  if (unexplained.length) {
    throw new Error(
      `over ${LIMIT} lines without a "Why one file" paragraph at the top; split them or ` +
        `say why:\n  ${unexplained.join("\n  ")}`,
    );
  }
});
