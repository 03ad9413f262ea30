/**
 * Go to definition and find references for `let` names, `extends` targets and `import`
 * paths, across files: lang's loaded Program (main file + imports, read through the
 * buffer-preferring host) knows every definition and use; other open documents that
 * import the same file add their uses.
 */
import {
  type DefinitionParams,
  ErrorCodes,
  type Location,
  type Position,
  type Range,
  type ReferenceParams,
  type RenameParams,
  ResponseError,
  type TextDocumentPositionParams,
  type TextEdit,
  type WorkspaceEdit,
} from "vscode-languageserver";
import type * as A from "../lang/ast.ts";
import type { Span } from "../lang/diagnostics/types.ts";
import type { Program } from "../lang/program.ts";
import { RESERVED_WORDS } from "../lang/syntax/keywords.ts";
import { extendsRefs, imports } from "./ast_query.ts";
import { nodePathAt } from "../lang/query.ts";
import { pathToUri } from "./convert.ts";
import type { SpanMapper } from "./diagnostics.ts";
import type { Workspace } from "./mod.ts";

type Target =
  | { kind: "let"; name: string }
  | { kind: "machine"; name: string }
  | { kind: "file"; path: string; from: A.StringLit };

/** What the cursor names, if anything navigable. */
export function targetAt(ws: Workspace, uri: string, pos: Position): Target | null {
  const a = ws.analysis(uri);
  const d = ws.get(uri);
  if (!a || !d) return null;
  const offset = d.doc.offsetAt(pos);
  const path = nodePathAt(a.ast, offset);
  const node = path[path.length - 1];
  const parent = path[path.length - 2];
  if (!node) return null;
  if (node.kind === "Name") return { kind: "let", name: node.name };
  if (node.kind === "Ident" && parent?.kind === "Let" && parent.name === node) {
    return { kind: "let", name: node.name };
  }
  if (node.kind === "Ident" && parent?.kind === "Machine") {
    return { kind: "machine", name: node.name };
  }
  if (node.kind === "String" && parent?.kind === "Import") {
    return { kind: "file", path: ws.host.resolve(d.path, node.value), from: node };
  }
  return null;
}

function loc(mapper: SpanMapper, span: Span): Location | null {
  const range = mapper.range(span);
  return range ? { uri: pathToUri(span.file), range } : null;
}

const fileStart = (path: string): Location => ({
  uri: pathToUri(path),
  range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
});

export function definition(ws: Workspace, p: DefinitionParams): Location | null {
  const t = targetAt(ws, p.textDocument.uri, p.position);
  const a = ws.analysis(p.textDocument.uri);
  if (!t || !a) return null;
  const mapper = ws.mapper();
  if (t.kind === "let") {
    const sym = a.program?.lets.get(t.name);
    return sym ? loc(mapper, sym.span) : null;
  }
  if (t.kind === "machine") {
    const sym = a.program?.machines.get(t.name);
    return sym ? loc(mapper, sym.span) : null;
  }
  return ws.host.fileExists(t.path) ? fileStart(t.path) : null;
}

/** Programs of every open document (the current one first), to gather uses across files. */
function programs(ws: Workspace, uri: string): Program[] {
  const out: Program[] = [];
  const first = ws.analysis(uri)?.program;
  if (first) out.push(first);
  for (const other of ws.docs.keys()) {
    if (other === uri) continue;
    const p = ws.analysis(other)?.program;
    if (p) out.push(p);
  }
  return out;
}

export function references(ws: Workspace, p: ReferenceParams): Location[] {
  const t = targetAt(ws, p.textDocument.uri, p.position);
  const a = ws.analysis(p.textDocument.uri);
  if (!t || !a?.program) return [];
  const mapper = ws.mapper();
  const spans: Span[] = [];
  const includeDecl = p.context.includeDeclaration;
  if (t.kind === "let") {
    const sym = a.program.lets.get(t.name);
    if (!sym) return [];
    if (includeDecl) spans.push(sym.span);
    for (const prog of programs(ws, p.textDocument.uri)) {
      const same = prog.lets.get(t.name);
      if (same && same.span.file === sym.span.file && same.span.start === sym.span.start) {
        for (const u of same.uses) spans.push(u);
      }
    }
  } else if (t.kind === "machine") {
    const sym = a.program.machines.get(t.name);
    if (!sym) return [];
    if (includeDecl) spans.push(sym.span);
    for (const prog of programs(ws, p.textDocument.uri)) {
      const same = prog.machines.get(t.name);
      if (!same || same.span.file !== sym.span.file || same.span.start !== sym.span.start) continue;
      for (const f of prog.files.values()) {
        for (const i of extendsRefs(f.ast, t.name)) spans.push(i.span);
      }
    }
  } else {
    // Every import of this file, in every file any open document loads.
    if (includeDecl && ws.host.fileExists(t.path)) {
      spans.push({ file: t.path, start: 0, end: 0 });
    }
    for (const prog of programs(ws, p.textDocument.uri)) {
      for (const f of prog.files.values()) {
        for (const imp of imports(f.ast)) {
          if (ws.host.resolve(f.path, imp.path.value) === t.path) spans.push(imp.path.span);
        }
      }
    }
  }
  const seen = new Set<string>();
  const out: Location[] = [];
  for (const s of spans) {
    const key = `${s.file}:${s.start}:${s.end}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const l = loc(mapper, s);
    if (l) out.push(l);
  }
  return out;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED = new Set<string>(RESERVED_WORDS);

/** Where a rename may start: a `let` name or a machine name (definition or use). */
export function prepareRename(ws: Workspace, p: TextDocumentPositionParams): Range | null {
  const t = targetAt(ws, p.textDocument.uri, p.position);
  const d = ws.get(p.textDocument.uri);
  const a = ws.analysis(p.textDocument.uri);
  if (!t || t.kind === "file" || !d || !a?.program) return null;
  const known = t.kind === "let" ? a.program.lets.has(t.name) : a.program.machines.has(t.name);
  if (!known) return null;
  const node = nodePathAt(a.ast, d.doc.offsetAt(p.position)).at(-1)!;
  return { start: d.doc.positionAt(node.span.start), end: d.doc.positionAt(node.span.end) };
}

/** Renames a constant or a machine everywhere the loaded programs mention it. */
export function rename(ws: Workspace, p: RenameParams): WorkspaceEdit | null {
  if (!prepareRename(ws, p)) return null;
  if (!NAME.test(p.newName) || RESERVED.has(p.newName)) {
    throw new ResponseError(ErrorCodes.InvalidParams, `\`${p.newName}\` is not a valid name`);
  }
  const locs = references(ws, { ...p, context: { includeDeclaration: true } });
  const changes: Record<string, TextEdit[]> = {};
  for (const l of locs) (changes[l.uri] ??= []).push({ range: l.range, newText: p.newName });
  return { changes };
}
