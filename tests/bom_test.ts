/**
 * A UTF-8 byte order mark at the start of a file, as Windows editors write it (issue 14,
 * item 3): `check`, `plan` and `fmt` on the command line and the language server answer
 * exactly as for the file without it, and `fmt` keeps it.
 */
import { Workspace } from "../lsp/mod.ts";
import { definition } from "../lsp/navigation.ts";
import { pathToUri } from "../lsp/convert.ts";

const root = new URL("../", import.meta.url).pathname;
const BOM = "\uFEFF";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

async function vmdesc(args: string[], cwd: string) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}cli/vmdesc.ts`, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder("utf-8", { ignoreBOM: true });
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

const LIB = "let serial_port = 0x3f8\nlet unused_here = 1\n";
const MAIN = `import "lib.vmdesc"
machine m { memory 64 MiB  device serial com1 { port serial_port }  boot pvh "g.elf" }
machine broken { memroy 64 MiB cpus 0 boot pvh "g.elf" }
`;

/** A folder with main.vmdesc importing lib.vmdesc, both with or without a BOM. */
async function project(bom: boolean): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-bom-" });
  const mark = bom ? BOM : "";
  await Deno.writeTextFile(`${dir}/lib.vmdesc`, mark + LIB);
  await Deno.writeTextFile(`${dir}/main.vmdesc`, mark + MAIN);
  await Deno.writeTextFile(`${dir}/g.elf`, "");
  return dir;
}

Deno.test("BOM: check, plan and fmt say the same as without it; fmt keeps it", async () => {
  const plain = await project(false);
  const bom = await project(true);
  try {
    for (
      const args of [
        ["check", "main.vmdesc"],
        ["check", "--format", "json", "main.vmdesc"],
        ["plan", "--json", "--machine", "m", "main.vmdesc"],
        ["fmt", "--check", "lib.vmdesc"],
      ]
    ) {
      const want = await vmdesc(args, plain);
      const got = await vmdesc(args, bom);
      assert(
        got.code === want.code && got.out === want.out && got.err === want.err,
        `${args.join(" ")}: with a BOM\n${got.out}${got.err}\nwithout\n${want.out}${want.err}`,
      );
    }
    const check = await vmdesc(["check", "main.vmdesc"], bom);
    assert(/main\.vmdesc:3:/.test(check.out) && !/E0001/.test(check.out), check.out);
    // fmt rewrites the file, mark first.
    await Deno.writeTextFile(`${bom}/messy.vmdesc`, BOM + "let   a =  1\n");
    const f = await vmdesc(["fmt", "messy.vmdesc"], bom);
    assert(f.code === 0, f.err);
    const bytes = await Deno.readFile(`${bom}/messy.vmdesc`);
    assert(
      new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes) === BOM + "let a = 1\n",
      `fmt wrote ${JSON.stringify(new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes))}`,
    );
    // And through stdin, as editors run it.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}cli/vmdesc.ts`, "fmt", "-"],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(BOM + "let   a =  1\n"));
    await w.close();
    const piped = await child.output();
    assert(
      new TextDecoder("utf-8", { ignoreBOM: true }).decode(piped.stdout) === BOM + "let a = 1\n",
      "fmt - keeps the mark",
    );
  } finally {
    await Deno.remove(plain, { recursive: true });
    await Deno.remove(bom, { recursive: true });
  }
});

Deno.test("BOM: the language server reads an imported file as the editor shows it", async () => {
  const dir = await project(true);
  try {
    const ws = new Workspace(true);
    const path = `${dir}/main.vmdesc`;
    // Editors strip the mark of the file they open; the imported file is read from disk.
    const text = MAIN;
    const uri = pathToUri(path);
    const d = ws.open(uri, text);
    const a = ws.analysis(uri)!;
    assert(!a.diagnostics.some((x) => x.code === "E0001"), "no syntax error from the import");
    const at = text.indexOf("serial_port }") + 2;
    const loc = definition(ws, { textDocument: { uri }, position: d.doc.positionAt(at) });
    const target = Array.isArray(loc) ? loc[0] : loc;
    assert(target && "range" in target, `definition: ${JSON.stringify(loc)}`);
    // `let serial_port` starts the file: the name is at character 4, as the editor counts.
    assert(
      JSON.stringify(target.range.start) === JSON.stringify({ line: 0, character: 4 }),
      `definition at ${JSON.stringify(target.range)}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
