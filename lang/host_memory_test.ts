import { createMemoryHost } from "./host_memory.ts";

function eq(a: unknown, b: unknown) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  }
}

Deno.test("memory host: files, extra existing paths, normalised lookups", () => {
  const h = createMemoryHost({ "d/a.vmdesc": "x" }, ["d/guest.elf"]);
  eq(h.readFile("d/./a.vmdesc"), "x");
  eq(h.readFile("d/missing"), undefined);
  eq([h.fileExists("d/a.vmdesc"), h.fileExists("d/guest.elf"), h.fileExists("d/nope")], [
    true,
    true,
    false,
  ]);
  eq(h.resolve("d/a.vmdesc", "guest.elf"), "d/guest.elf");
});
