import { basename, dirname, normalize, relativePath, resolvePath } from "./paths.ts";

function eq(a: unknown, b: unknown) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  }
}

Deno.test("paths: resolve relative to the naming file's directory and stay relative", () => {
  eq(resolvePath("examples/extends.vmdesc", "common.vmdesc"), "examples/common.vmdesc");
  eq(resolvePath("examples/a.vmdesc", "../lib/b.vmdesc"), "lib/b.vmdesc");
  eq(resolvePath("a/b/c.vmdesc", "../d.vmdesc"), "a/d.vmdesc");
  eq(resolvePath("a.vmdesc", "../b.vmdesc"), "../b.vmdesc");
  eq(resolvePath("/x/y/a.vmdesc", "b.vmdesc"), "/x/y/b.vmdesc");
  eq(resolvePath("/x/y.vmdesc", "./z.vmdesc"), "/x/z.vmdesc");
  eq(resolvePath("y.vmdesc", "/abs/./k"), "/abs/k");
  eq(resolvePath("<stdin>", "b.vmdesc"), "b.vmdesc");
  eq(resolvePath("<stdin>", "../b.vmdesc"), "../b.vmdesc");
});

Deno.test("paths: normalize, dirname, basename", () => {
  eq(normalize("/a/../../b"), "/b");
  eq(normalize("a/./b/../c"), "a/c");
  eq(normalize("a/.."), ".");
  eq(normalize("../../x"), "../../x");
  eq([dirname("a/b/c"), dirname("/c"), dirname("c")], ["a/b", "/", "."]);
  eq([basename("a/b/c"), basename("c")], ["c", "c"]);
});

Deno.test("paths: relativePath re-expresses a path from another directory", () => {
  eq(relativePath("a/b", "a/c/d"), "../c/d");
  eq(relativePath(".", "lib/g.elf"), "lib/g.elf");
  eq(relativePath("x/y", "lib/g.elf"), "../../lib/g.elf");
  eq(relativePath("/abs", "rel/g.elf"), "rel/g.elf"); // mixed: left as it is
  eq(relativePath("../up", "g.elf"), "g.elf"); // cannot climb out of an unknown directory
});
