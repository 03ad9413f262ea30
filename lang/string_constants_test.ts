/**
 * String constants (issue 14): `let console = "console=ttyS0"` names a string, usable
 * where a setting takes text (cmdline, initrd, a serial output), joined with `+`, typed:
 * a string where a number goes (or the reverse) is E0005. A path in a string constant is
 * relative to the file that wrote the literal.
 */
import { compile, createMemoryHost, format } from "./mod.ts";

function eq(a: unknown, b: unknown, what: string) {
  const sa = JSON.stringify(a);
  const sb = JSON.stringify(b);
  if (sa !== sb) throw new Error(`${what}:\n got  ${sa}\n want ${sb}`);
}

const LIB = `let console = "console=ttyS0"
let initrd_img = "images/initrd.img"
let com1_port = 0x3f8
`;

function compileMain(main: string) {
  const host = createMemoryHost(
    { "lib/common.vmdesc": LIB, "main.vmdesc": main },
    ["g.elf", "lib/images/initrd.img"],
  );
  return compile(main, { file: "main.vmdesc", host });
}

Deno.test("string constants: in cmdline, initrd and output; joined with +", () => {
  const r = compileMain(`import "lib/common.vmdesc"
let quiet = console + " quiet"
machine m {
  memory 64 MiB
  device serial com1 { port com1_port output "logs/" + "com1.txt" }
  boot pvh "g.elf" {
    cmdline quiet + " " + "debug"
    initrd initrd_img
  }
}
`);
  eq(r.diagnostics.map((d) => d.message), [], "clean");
  const p = r.plans.get("m")!;
  eq(p.boot.cmdline, "console=ttyS0 quiet debug", "cmdline");
  // The literal was written in lib/: the path is relative to lib/, like a path written there.
  eq(p.boot.initrd, "lib/images/initrd.img", "initrd from the constant's file");
  eq(p.devices.find((d) => d.id === "com1")?.props.output, "logs/com1.txt", "output");
});

Deno.test("string constants: typed, E0005 on a mix-up, quiet after a broken definition", () => {
  const r = compileMain(`import "lib/common.vmdesc"
let broken = 1 + "x"
machine m {
  memory console
  cpus 1 + "two"
  device serial com1 { port 0x3f8 output stdout }
  boot pvh "g.elf" { cmdline com1_port initrd "a" * 2 }
}
machine n {
  memory 64 MiB
  device serial com1 { port 0x3f8 }
  boot pvh "g.elf" { cmdline broken }
}
`);
  eq(r.diagnostics.map((d) => `${d.code} ${d.message}`), [
    "E0005 `+` joins two strings or adds two numbers, not a number and a string",
    "E0005 `memory` must be a number, found the string constant `console`",
    "E0005 `+` joins two strings or adds two numbers, not a number and a string",
    "E0005 `output` must be a string in double quotes, found the word `stdout`",
    "E0005 `cmdline` must be a string in double quotes, found the number constant `com1_port`",
    "E0005 `*` applies to numbers, not a string",
    // `cmdline broken` in n: its definition is already reported, nothing more here.
  ], "each mix-up once");
  const quote = r.diagnostics.find((d) => d.message.includes("word `stdout`"))!;
  eq(quote.fixes?.map((f) => f.replacement), ['"stdout"'], "the quotes as a fix");
});

Deno.test("string constants: fmt prints them as written", () => {
  const text = 'let  a =  "x"+"y"\nlet b = a + "\\n"\n';
  const f = format(text);
  eq(f.diagnostics, [], "parses");
  eq(f.text, 'let a = "x" + "y"\nlet b = a + "\\n"\n', "formatted");
  eq(format(f.text).text, f.text, "idempotent");
});
