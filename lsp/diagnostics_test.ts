import { assert, assertEquals } from "../tests/lsp/assert.ts";
import { SpanMapper, toLspDiagnostics } from "./diagnostics.ts";
import type { Diagnostic } from "../lang/diagnostics/types.ts";
import { explainCode } from "./explain.ts";
import { CODES } from "../plan/codes.ts";

const files: Record<string, string> = {
  "/p/main.vmdesc": 'import "lib.vmdesc"\nmachine m {\n  cpus 0\n}\n',
  "/p/lib.vmdesc": "let a = 1\nlet a = 2\n",
};
const mapper = new SpanMapper((p) => files[p]);

Deno.test("diagnostics: code, severity, source, range, related labels", () => {
  const d: Diagnostic = {
    code: "E0403",
    severity: "error",
    message: "0 vCPUs",
    span: {
      file: "/p/main.vmdesc",
      start: files["/p/main.vmdesc"].indexOf("0"),
      end: files["/p/main.vmdesc"].indexOf("0") + 1,
    },
    labels: [{ span: { file: "/p/lib.vmdesc", start: 4, end: 5 }, message: "see here" }],
    hint: "use 1..255",
  };
  const [l] = toLspDiagnostics([d], "/p/main.vmdesc", mapper, () => null);
  assertEquals(l.code, "E0403");
  assertEquals(l.source, "vmdesc");
  assertEquals(l.severity, 1);
  assertEquals(l.message, "0 vCPUs");
  assertEquals(l.range, { start: { line: 2, character: 7 }, end: { line: 2, character: 8 } });
  assertEquals(l.relatedInformation![0].location.uri, "file:///p/lib.vmdesc");
  assertEquals(l.relatedInformation![0].location.range.start, { line: 0, character: 4 });
});

Deno.test("diagnostics: a problem inside an imported file shows on the import", () => {
  const d: Diagnostic = {
    code: "E0102",
    severity: "error",
    message: "the constant `a` is defined twice",
    span: { file: "/p/lib.vmdesc", start: 14, end: 15 }, // the second `a`
    labels: [],
    hint: null,
  };
  const importSpan = { file: "/p/main.vmdesc", start: 0, end: 19 };
  const [l] = toLspDiagnostics(
    [d],
    "/p/main.vmdesc",
    mapper,
    (f) => (f === "/p/lib.vmdesc" ? importSpan : null),
  );
  assertEquals(l.range, { start: { line: 0, character: 0 }, end: { line: 0, character: 19 } });
  assert(l.message.startsWith("in /p/lib.vmdesc: "), l.message);
  assertEquals(l.relatedInformation![0].location.range.start, { line: 1, character: 4 });
  const w = toLspDiagnostics(
    [{ ...d, code: "W0005", severity: "warning" }],
    "/p/lib.vmdesc",
    mapper,
    () => null,
  );
  assertEquals(w[0].severity, 2);
  assertEquals(w[0].tags, [1]);
});

Deno.test("explainCode: every code has an explanation; unknown codes have none", () => {
  for (const code of Object.keys(CODES)) {
    const doc = explainCode(code);
    assert(doc && doc.includes(code), `explanation of ${code}`);
  }
  assert(explainCode("E0207")!.startsWith("### E0207"), "section heading demoted for hover");
  assertEquals(explainCode("E9999"), null);
});
