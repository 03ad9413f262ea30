/** Shared pieces of the LSP tests and benchmark: starting the real server, paths, `vmdesc check`. */
import { LspClient, type Message } from "./jsonrpc_client.ts";
import { vmdescDenoArgs } from "../../bench/vmdesc_command.ts";
import { run } from "../util/cli.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const FIXTURES = `${ROOT}/tests/lsp/fixtures`;
/** `deno run` with the flags and permissions of `deno task vmdesc` (deno.json). */
export const DENO_RUN = vmdescDenoArgs();

export function fileUri(path: string): string {
  return "file://" + path.split("/").map(encodeURIComponent).join("/");
}

export function startServer(extraArgs: string[] = []): LspClient {
  return LspClient.start(
    Deno.execPath(),
    [...DENO_RUN, `${ROOT}/cli/vmdesc.ts`, "lsp", "--stdio", ...extraArgs],
    { cwd: ROOT },
  );
}

/** The `initialize` handshake, with `root` (the project by default) as the workspace. */
export async function initialize(c: LspClient, root = ROOT): Promise<unknown> {
  const r = await c.request("initialize", {
    processId: Deno.pid,
    rootUri: fileUri(root),
    capabilities: {
      textDocument: {
        publishDiagnostics: { relatedInformation: true, versionSupport: true },
        hover: { contentFormat: ["markdown", "plaintext"] },
        completion: { completionItem: { documentationFormat: ["markdown"] } },
        codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ["quickfix"] } } },
      },
    },
  }, 30_000);
  await c.notify("initialized", {});
  return r;
}

export interface CheckDiag {
  code: string;
  message: string;
  /** 0-based LSP-style range (the fixtures are ASCII, so columns are UTF-16 units too). */
  range:
    | { start: { line: number; character: number }; end: { line: number; character: number } }
    | null;
}

/** `vmdesc check --format json` on `text` (as file `path`, through stdin when given text). */
export function checkJson(path: string, text?: string): Promise<CheckDiag[]> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  return checkJsonIn(dir, [text === undefined ? path : "-"], text);
}

/**
 * `vmdesc check --format json INPUTS` in `cwd` (`.`: the folder's files checked together);
 * with `file`, only the diagnostics in that file (as the report names it).
 */
export async function checkJsonIn(
  cwd: string,
  inputs: string[],
  stdin?: string,
  file?: string,
): Promise<CheckDiag[]> {
  const args = [...DENO_RUN, `${ROOT}/cli/vmdesc.ts`, "check", "--format", "json", ...inputs];
  const out = await run(Deno.execPath(), { args, cwd }, stdin);
  const report = JSON.parse(out.stdout);
  // deno-lint-ignore no-explicit-any
  return report.diagnostics.filter((d: any) => file === undefined || d.file === file).map((
    // deno-lint-ignore no-explicit-any
    d: any,
  ) => ({
    code: d.code,
    message: d.message,
    range: d.range
      ? {
        start: { line: d.range.start.line - 1, character: d.range.start.column - 1 },
        end: { line: d.range.end.line - 1, character: d.range.end.column - 1 },
      }
      : null,
  }));
}

export function lspDiags(m: Message): CheckDiag[] {
  // deno-lint-ignore no-explicit-any
  return ((m.params as any).diagnostics as any[]).map((d) => ({
    code: d.code,
    message: d.message,
    range: d.range,
  }));
}

export function sortDiags(ds: CheckDiag[]): CheckDiag[] {
  return [...ds].sort((a, b) =>
    (a.range?.start.line ?? -1) - (b.range?.start.line ?? -1) ||
    (a.range?.start.character ?? -1) - (b.range?.start.character ?? -1) ||
    a.code.localeCompare(b.code)
  );
}

export async function vmdescFmt(text: string): Promise<{ code: number; text: string }> {
  const out = await run(Deno.execPath(), {
    args: [...DENO_RUN, `${ROOT}/cli/vmdesc.ts`, "fmt", "-"],
  }, text);
  return { code: out.code, text: out.stdout };
}
