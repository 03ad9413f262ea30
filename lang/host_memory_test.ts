import { createMemoryHost, joinRelative } from "./host_memory.ts";

function eq(a: unknown, b: unknown) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  }
}

Deno.test("joinRelative resolves against the importing file's directory", () => {
  eq(joinRelative("examples/extends.vmdesc", "common.vmdesc"), "examples/common.vmdesc");
  eq(joinRelative("a/b/c.vmdesc", "../d.vmdesc"), "a/d.vmdesc");
  eq(joinRelative("/x/y.vmdesc", "./z.vmdesc"), "/x/z.vmdesc");
  eq(joinRelative("y.vmdesc", "/abs/k"), "/abs/k");
  eq(joinRelative("y.vmdesc", "../up.vmdesc"), "../up.vmdesc");
});

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
