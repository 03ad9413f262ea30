/**
 * Drives the real server process (`vmdesc lsp --stdio`) with the project's own JSON-RPC
 * client through a whole editor session, and checks every answer against the CLI:
 * diagnostics equal `vmdesc check --format json`, formatting equals `vmdesc fmt`.
 */
import { assert, assertEquals } from "./assert.ts";
import type { Message } from "./jsonrpc_client.ts";
import {
  checkJson,
  fileUri,
  FIXTURES,
  initialize,
  lspDiags,
  sortDiags,
  startServer,
  vmdescFmt,
} from "./helpers.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const errorsPath = `${FIXTURES}/errors.vmdesc`;
const mainPath = `${FIXTURES}/main.vmdesc`;
const commonPath = `${FIXTURES}/common.vmdesc`;

/** Position of the `nth` occurrence of `needle` in `text` (plus `delta` characters). */
function posOf(text: string, needle: string, delta = 0, nth = 0) {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`fixture lacks ${JSON.stringify(needle)}`);
  }
  const before = text.slice(0, at + delta);
  const line = before.split("\n").length - 1;
  return { line, character: before.length - before.lastIndexOf("\n") - 1 };
}

function hoverText(h: Any): string {
  return typeof h?.contents === "string" ? h.contents : h?.contents?.value ?? "";
}

/** Applies LSP TextEdits (non-overlapping) to a text. */
function applyEdits(text: string, edits: Any[]): string {
  const lines = text.split("\n");
  const off = (p: { line: number; character: number }) =>
    lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
  const sorted = [...edits].sort((a, b) => off(b.range.start) - off(a.range.start));
  let out = text;
  for (const e of sorted) {
    out = out.slice(0, off(e.range.start)) + e.newText + out.slice(off(e.range.end));
  }
  return out;
}

Deno.test("lsp protocol: a whole session against the real server process", async (t) => {
  const c = startServer();
  let exited = false;
  try {
    const init: Any = await initialize(c);
    const caps = init.capabilities;
    assertEquals(caps.textDocumentSync.change, 2, "incremental sync");
    for (
      const k of [
        "hoverProvider",
        "definitionProvider",
        "referencesProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
      ]
    ) {
      assert(caps[k], `capability ${k}`);
    }
    assert(caps.completionProvider && caps.codeActionProvider, "completion and code actions");

    const errorsText = await Deno.readTextFile(errorsPath);
    const errorsUri = fileUri(errorsPath);
    const diagsFor = (uri: string, version: number) =>
      c.waitFor((m: Message) =>
        m.method === "textDocument/publishDiagnostics" && (m.params as Any).uri === uri &&
        (m.params as Any).version === version
      );

    await t.step("didOpen publishes exactly `vmdesc check`'s diagnostics", async () => {
      const wait = diagsFor(errorsUri, 1);
      await c.notify("textDocument/didOpen", {
        textDocument: { uri: errorsUri, languageId: "vmdesc", version: 1, text: errorsText },
      });
      const got = sortDiags(lspDiags(await wait));
      const want = sortDiags(await checkJson(errorsPath));
      assert(want.length >= 4, "the fixture has several known problems");
      assertEquals(got, want);
      const codes = got.map((d) => d.code);
      for (const code of ["E0207", "E0301", "E0302", "W0005"]) {
        assert(codes.includes(code), `${code} reported`);
      }
      // The did-you-mean fix for the unknown kind, before the next step corrects it by hand.
      const kind: Any[] = await c.request("textDocument/codeAction", {
        textDocument: { uri: errorsUri },
        range: { start: posOf(errorsText, "serail", 2), end: posOf(errorsText, "serail", 2) },
        context: { diagnostics: [] },
      });
      assertEquals(kind.map((a) => [a.diagnostics[0].code, a.edit.changes[errorsUri][0].newText]), [
        ["E0301", "serial"],
      ]);
    });

    let text = errorsText;
    await t.step(
      "didChange (incremental) re-publishes, still equal to `vmdesc check`",
      async () => {
        // Fix the misspelt kind `serail` with a ranged edit, and add a line.
        const at = posOf(text, "serail");
        const wait = diagsFor(errorsUri, 2);
        const changes = [
          {
            range: { start: at, end: { line: at.line, character: at.character + 6 } },
            text: "serial",
          },
          {
            range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
            text: "// edited\n",
          },
        ];
        await c.notify("textDocument/didChange", {
          textDocument: { uri: errorsUri, version: 2 },
          contentChanges: changes,
        });
        text = "// edited\n" + text.replace("serail", "serial");
        const got = sortDiags(lspDiags(await wait));
        assert(!got.some((d) => d.code === "E0301"), "the fixed kind is no longer reported");
        assertEquals(got, sortDiags(await checkJson(errorsPath, text)));
        // A second change that breaks the syntax, then one that restores it.
        const brk = posOf(text, "machine broken {", 15);
        const wait3 = diagsFor(errorsUri, 3);
        await c.notify("textDocument/didChange", {
          textDocument: { uri: errorsUri, version: 3 },
          contentChanges: [{
            range: { start: brk, end: { line: brk.line, character: brk.character + 1 } },
            text: "",
          }],
        });
        const broken = text.slice(0, text.indexOf("machine broken {") + 15) +
          text.slice(text.indexOf("machine broken {") + 16);
        const got3 = sortDiags(lspDiags(await wait3));
        assert(got3.some((d) => d.code === "E0001"), "syntax error reported");
        assertEquals(got3, sortDiags(await checkJson(errorsPath, broken)));
        const wait4 = diagsFor(errorsUri, 4);
        await c.notify("textDocument/didChange", {
          textDocument: { uri: errorsUri, version: 4 },
          contentChanges: [{ range: { start: brk, end: brk }, text: "{" }],
        });
        assertEquals(
          sortDiags(lspDiags(await wait4)),
          sortDiags(await checkJson(errorsPath, text)),
        );
        // A burst of keystrokes without waiting (the debounce coalesces them): the last
        // version is published, and it is right. Typed: `cpus 1` → `cpus 12` → ... → `cpus 1`.
        const cpus = posOf(text, "cpus 1", 6);
        const wait9 = diagsFor(errorsUri, 9);
        const keys = ["2", "\b", "0", "0", "\b\b"];
        let col = cpus.character;
        for (let k = 0; k < keys.length; k++) {
          const back = keys[k].split("\b").length - 1;
          const range = back
            ? {
              start: { line: cpus.line, character: col - back },
              end: { line: cpus.line, character: col },
            }
            : {
              start: { line: cpus.line, character: col },
              end: { line: cpus.line, character: col },
            };
          col += back ? -back : 1;
          await c.notify("textDocument/didChange", {
            textDocument: { uri: errorsUri, version: 5 + k },
            contentChanges: [{ range, text: back ? "" : keys[k] }],
          });
        }
        assertEquals(
          sortDiags(lspDiags(await wait9)),
          sortDiags(await checkJson(errorsPath, text)),
        );
      },
    );

    await t.step("hover: numbers, ranges, devices, diagnostic codes", async () => {
      const num: Any = await c.request("textDocument/hover", {
        textDocument: { uri: errorsUri },
        position: posOf(text, "0x1000_0800", 3),
      });
      const h = hoverText(num);
      assert(h.includes("268437504") && h.includes("0x1000_0800"), `decimal and hex: ${h}`);
      assert(h.includes("range") && h.includes("size"), `range size: ${h}`);
      assert(
        h.includes("E0207") && h.includes("range not page aligned"),
        `diagnostic explanation: ${h}`,
      );
    });

    const mainText = await Deno.readTextFile(mainPath);
    const mainUri = fileUri(mainPath);
    await t.step("a second document with an import: diagnostics equal `vmdesc check`", async () => {
      const wait = diagsFor(mainUri, 1);
      await c.notify("textDocument/didOpen", {
        textDocument: { uri: mainUri, languageId: "vmdesc", version: 1, text: mainText },
      });
      assertEquals(sortDiags(lspDiags(await wait)), sortDiags(await checkJson(mainPath)));
    });

    await t.step("hover on devices, sizes, names and the hole uses the lowered Plan", async () => {
      const dev = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "com1", 1),
        }),
      );
      assert(
        dev.includes("ports") && dev.includes("0x3f8") && dev.includes("IRQ (GSI) 4"),
        `device claims: ${dev}`,
      );
      const pci = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "00:02.0", 1),
        }),
      );
      assert(pci.includes("1af4:1044") && pci.includes("config space"), `pci function: ${pci}`);
      assert(pci.includes("MSI-X 2 vectors") && pci.includes("getrandom"), `virtio: ${pci}`);
      const size = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "128 MiB", 1),
        }),
      );
      assert(
        size.includes("0x800_0000") && size.includes("134217728") && size.includes("128 MiB"),
        `size: ${size}`,
      );
      const name = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "ecam ecam_base", 6),
        }),
      );
      assert(
        name.includes("ecam_base") && name.includes("0xE000_0000") &&
          name.includes("common.vmdesc"),
        `name: ${name}`,
      );
      const range = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, ".. 4 GiB", 0),
        }),
      );
      assert(range.includes("overlaps") && range.includes("ECAM"), `range overlaps: ${range}`);
      const imp = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "common.vmdesc", 3),
        }),
      );
      assert(imp.includes(commonPath) && imp.includes("`ecam_base`"), `import: ${imp}`);
      const buses = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "0..3", 1),
        }),
      );
      assert(buses.includes("4 buses") && buses.includes("ECAM 4 MiB"), `bus range: ${buses}`);
      const port = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "port 0xf4", 7),
        }),
      );
      assert(port.includes("244") && port.includes("port of `debug_exit`"), `port owner: ${port}`);
      const prop = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "strategy", 3),
        }),
      );
      assert(prop.startsWith("**strategy**"), `property doc: ${prop}`);
      const code = hoverText(
        await c.request("textDocument/hover", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "W0006", 2),
        }),
      );
      assert(
        code.includes("W0006") && code.includes("boot payload not found"),
        `code in a comment: ${code}`,
      );
    });

    await t.step("completion: keywords, kinds, properties, strategies, let names", async () => {
      const complete = async (doc: string, version: number, line: string) => {
        // Put `line` into a fresh machine body and ask at its end.
        const body = `${doc}\nmachine t {\n  ${line}`;
        await c.notify("textDocument/didChange", {
          textDocument: { uri: mainUri, version },
          contentChanges: [{ text: body }],
        });
        const lines = body.split("\n");
        const r: Any = await c.request("textDocument/completion", {
          textDocument: { uri: mainUri },
          position: { line: lines.length - 1, character: lines[lines.length - 1].length },
        });
        return (r.items ?? r).map((i: Any) => i.label as string);
      };
      const kinds = await complete(mainText, 2, "device ");
      for (const k of ["serial", "debug_exit", "i8042"]) {
        assert(kinds.includes(k), `device kind ${k}: ${kinds}`);
      }
      const pciKinds = await complete(mainText, 3, "pci 00:05.0 ");
      for (const k of ["virtio_rng", "virtio_net", "virtio_blk", "generic"]) {
        assert(pciKinds.includes(k), `pci kind ${k}`);
      }
      const props = await complete(mainText, 4, "device debug_exit { ");
      assertEquals(props.sort(), ["port", "size", "success"]);
      const settings = await complete(mainText, 5, "");
      for (const k of ["cpus", "memory", "ram", "pci_hole", "device", "pci", "boot"]) {
        assert(settings.includes(k), `setting ${k}`);
      }
      const strategies = await complete(mainText, 6, "pci_hole 0xC000_0000 .. 4 GiB { strategy ");
      assertEquals(strategies.sort(), ["shadow", "trap"]);
      const names = await complete(mainText, 7, "memory ");
      for (const k of ["ram_size", "ecam_base", "hole_base"]) {
        assert(names.includes(k), `let name ${k}: ${names}`);
      }
      const top = await c.request<Any>("textDocument/completion", {
        textDocument: { uri: mainUri },
        position: { line: 2, character: 0 },
      });
      const topLabels = (top.items ?? top).map((i: Any) => i.label);
      assertEquals(topLabels.sort(), ["import", "let", "machine"]);
      // Import paths: the .vmdesc files next to the document (not itself).
      await c.notify("textDocument/didChange", {
        textDocument: { uri: mainUri, version: 8 },
        contentChanges: [{ text: 'import "' }],
      });
      const imp = await c.request<Any>("textDocument/completion", {
        textDocument: { uri: mainUri },
        position: { line: 0, character: 8 },
      });
      const impLabels = (imp.items ?? imp).map((i: Any) => i.label);
      assert(
        impLabels.includes("common.vmdesc") && impLabels.includes("errors.vmdesc"),
        `${impLabels}`,
      );
      assert(!impLabels.includes("main.vmdesc"), "not the file itself");
      // Restore the document.
      const wait = diagsFor(mainUri, 9);
      await c.notify("textDocument/didChange", {
        textDocument: { uri: mainUri, version: 9 },
        contentChanges: [{ text: mainText }],
      });
      await wait;
    });

    await t.step(
      "definition and references: let names (across files), extends, import",
      async () => {
        const def: Any = await c.request("textDocument/definition", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "ecam ecam_base", 7),
        });
        const loc = Array.isArray(def) ? def[0] : def;
        assertEquals(loc.uri, fileUri(commonPath));
        assertEquals(loc.range.start, posOf(await Deno.readTextFile(commonPath), "ecam_base"));
        const local: Any = await c.request("textDocument/definition", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "memory ram_size", 8),
        });
        assertEquals(local.range.start, posOf(mainText, "ram_size"));
        const ext: Any = await c.request("textDocument/definition", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "extends base", 9),
        });
        assertEquals(ext.range.start, posOf(mainText, "base {"));
        const imp: Any = await c.request("textDocument/definition", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "common.vmdesc", 2),
        });
        assertEquals(imp.uri, fileUri(commonPath));
        const refs: Any[] = await c.request("textDocument/references", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "ram_size", 2),
          context: { includeDeclaration: true },
        });
        const lines = refs.map((r) => r.range.start.line).sort((a, b) => a - b);
        assertEquals(lines, [2, 6, 18]);
        const mrefs: Any[] = await c.request("textDocument/references", {
          textDocument: { uri: mainUri },
          position: posOf(mainText, "base {", 1),
          context: { includeDeclaration: false },
        });
        assertEquals(mrefs.map((r) => r.range.start), [posOf(mainText, "extends base", 8)]);
      },
    );

    await t.step("rename: a constant across its uses; invalid names refused", async () => {
      const at = posOf(mainText, "memory ram_size", 9);
      const prep: Any = await c.request("textDocument/prepareRename", {
        textDocument: { uri: mainUri },
        position: at,
      });
      assertEquals(prep, {
        start: posOf(mainText, "memory ram_size", 7),
        end: posOf(mainText, "memory ram_size", 15),
      });
      const none = await c.request("textDocument/prepareRename", {
        textDocument: { uri: mainUri },
        position: posOf(mainText, "cpus", 1),
      });
      assertEquals(none, null);
      const edit: Any = await c.request("textDocument/rename", {
        textDocument: { uri: mainUri },
        position: at,
        newName: "ram_total",
      });
      const edits = edit.changes[mainUri];
      assertEquals(
        edits.map((e: Any) => e.range.start.line).sort((a: number, b: number) => a - b),
        [2, 6, 18],
      );
      const renamed = applyEdits(mainText, edits);
      assert(!renamed.includes("ram_size") && renamed.split("ram_total").length === 4, renamed);
      assertEquals(await checkJson(mainPath, renamed), await checkJson(mainPath, mainText));
      const bad = await c.requestRaw("textDocument/rename", {
        textDocument: { uri: mainUri },
        position: at,
        newName: "machine",
      });
      assert(bad.error && bad.error.message.includes("not a valid name"), JSON.stringify(bad));
    });

    await t.step(
      "document symbols: machines with devices, PCI functions and the hole",
      async () => {
        const syms: Any[] = await c.request("textDocument/documentSymbol", {
          textDocument: { uri: mainUri },
        });
        const base = syms.find((s) => s.name === "base");
        assert(base, "machine base");
        const kids = base.children.map((k: Any) => k.name);
        for (const k of ["pci_hole", "com1", "debug_exit", "00:02.0 virtio_rng"]) {
          assert(kids.includes(k), `child ${k}: ${kids}`);
        }
        assert(
          syms.some((s) => s.name === "big" && s.detail === "extends base"),
          "machine big",
        );
        assert(syms.some((s) => s.name === "ram_size"), "constant");
      },
    );

    await t.step(
      "an unsaved change in an imported file re-checks the files importing it",
      async () => {
        const commonUri = fileUri(commonPath);
        const commonText = await Deno.readTextFile(commonPath);
        const has = (code: string) => (m: Message) =>
          m.method === "textDocument/publishDiagnostics" && (m.params as Any).uri === mainUri &&
          (m.params as Any).diagnostics.some((d: Any) => d.code === code);
        await c.notify("textDocument/didOpen", {
          textDocument: { uri: commonUri, languageId: "vmdesc", version: 1, text: commonText },
        });
        // Rename the constant in the (unsaved) buffer: main.vmdesc now uses an undefined name.
        let wait = c.waitFor(has("E0101"));
        await c.notify("textDocument/didChange", {
          textDocument: { uri: commonUri, version: 2 },
          contentChanges: [{ text: commonText.replace("ecam_base", "ecam_addr") }],
        });
        const undef = (await wait).params as Any;
        const e0101 = undef.diagnostics.find((d: Any) => d.code === "E0101");
        assertEquals(e0101.range.start, posOf(mainText, "ecam ecam_base", 5));
        // A syntax error inside the import shows on the `import` line, pointing at the real place.
        wait = c.waitFor(has("E0001"));
        await c.notify("textDocument/didChange", {
          textDocument: { uri: commonUri, version: 3 },
          contentChanges: [{ text: "let ecam_base = \n" }],
        });
        const syn = ((await wait).params as Any).diagnostics.find((d: Any) => d.code === "E0001");
        assertEquals(syn.range.start, { line: 0, character: 0 });
        assert(syn.message.startsWith(`in ${commonPath}: `), syn.message);
        assertEquals(syn.relatedInformation[0].location.uri, commonUri);
        // Closing the buffer falls back to the file on disk: main is clean again.
        const clean = c.waitFor((m: Message) =>
          m.method === "textDocument/publishDiagnostics" && (m.params as Any).uri === mainUri &&
          !(m.params as Any).diagnostics.some((d: Any) => d.code.startsWith("E"))
        );
        await c.notify("textDocument/didClose", { textDocument: { uri: commonUri } });
        const after = lspDiags(await clean);
        assertEquals(sortDiags(after), sortDiags(await checkJson(mainPath)));
      },
    );

    await t.step("code actions from diagnostics' fixes: three distinct codes", async () => {
      const diags: Any[] = await c.request<Any>("textDocument/codeAction", {
        textDocument: { uri: errorsUri },
        range: {
          start: { line: 0, character: 0 },
          end: { line: text.split("\n").length, character: 0 },
        },
        context: { diagnostics: [] },
      });
      const codes = new Set(diags.map((a) => a.diagnostics[0].code));
      for (const code of ["E0207", "E0302", "W0005"]) {
        assert(codes.has(code), `a fix for ${code}: ${[...codes]}`);
      }
      // Apply the E0302 fix (sise → size) and the E0207 fix; both problems disappear.
      const pick = (code: string) => diags.find((a) => a.diagnostics[0].code === code);
      const edits = [pick("E0302"), pick("E0207")].flatMap((a) => a.edit.changes[errorsUri]);
      const fixed = applyEdits(text, edits);
      assert(fixed.includes("size 1") && fixed.includes("0x1000_1000"), fixed);
      const after = (await checkJson(errorsPath, fixed)).map((d) => d.code);
      assert(!after.includes("E0302") && !after.includes("E0207"), `fixed: ${after}`);
      // A cursor on one diagnostic gets only its own fixes.
      const one: Any[] = await c.request("textDocument/codeAction", {
        textDocument: { uri: errorsUri },
        range: { start: posOf(text, "sise", 1), end: posOf(text, "sise", 1) },
        context: { diagnostics: [] },
      });
      assertEquals(one.map((a) => a.diagnostics[0].code), ["E0302"]);
      assertEquals(one[0].edit.changes[errorsUri][0].newText, "size");
    });

    await t.step(
      "formatting equals `vmdesc fmt` (one edit; none when already formatted)",
      async () => {
        const messy =
          'let  a=1\n\nmachine m{memory 128 MiB\n   boot pvh "x.elf"\n device serial com1{port 0x3f8 irq 4}}\n';
        const uri = fileUri(`${FIXTURES}/messy-unsaved.vmdesc`);
        await c.notify("textDocument/didOpen", {
          textDocument: { uri, languageId: "vmdesc", version: 1, text: messy },
        });
        const edits: Any[] = await c.request("textDocument/formatting", {
          textDocument: { uri },
          options: { tabSize: 2, insertSpaces: true },
        });
        const want = await vmdescFmt(messy);
        assertEquals(want.code, 0);
        if (want.text === messy) {
          assertEquals(edits, []);
        } else {
          assertEquals(edits.length, 1);
          assertEquals(applyEdits(messy, edits), want.text);
          // Formatting the formatted text changes nothing.
          await c.notify("textDocument/didChange", {
            textDocument: { uri, version: 2 },
            contentChanges: [{ text: want.text }],
          });
          assertEquals(
            await c.request("textDocument/formatting", {
              textDocument: { uri },
              options: { tabSize: 2, insertSpaces: true },
            }),
            [],
          );
        }
        // A syntax error: no edits.
        await c.notify("textDocument/didChange", {
          textDocument: { uri, version: 3 },
          contentChanges: [{ text: "machine {" }],
        });
        assertEquals(
          await c.request("textDocument/formatting", {
            textDocument: { uri },
            options: { tabSize: 2, insertSpaces: true },
          }),
          [],
        );
        await c.notify("textDocument/didClose", { textDocument: { uri } });
      },
    );

    await t.step("shutdown and exit: the process ends with status 0", async () => {
      assertEquals(await c.request("shutdown", null), null);
      await c.notify("exit", null);
      const status = await c.close(10_000);
      exited = true;
      assertEquals(status.code, 0, c.stderr);
    });
  } finally {
    if (!exited) await c.kill();
  }
});
