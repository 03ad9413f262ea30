/**
 * The vmdesc language server: the only module that knows LSP. It keeps one incremental
 * parser per open document, re-checks with `lang/` after each change (lightly debounced,
 * stale results dropped), and answers editor requests from the latest analysis.
 */
import process from "node:process";
import {
  CodeActionKind,
  type Connection,
  createConnection,
  type DidChangeTextDocumentParams,
  type InitializeResult,
  ProposedFeatures,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  TextDocumentSyncKind,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import { createIncrementalParser, type IncrementalParser } from "../lang/parse.ts";
import { type Analysis, analyze } from "./analysis.ts";
import { uriToPath } from "./convert.ts";
import { SpanMapper, toLspDiagnostics } from "./diagnostics.ts";
import { DenoHost } from "../host/disk_host.ts";
import { hover } from "./hover.ts";
import { completion, TRIGGER_CHARACTERS } from "./completion.ts";
import { definition, prepareRename, references, rename } from "./navigation.ts";
import { documentSymbols } from "./symbols.ts";
import { codeActions } from "./actions.ts";
import { formatDocument } from "./format.ts";
import { imports } from "./ast_query.ts";
import { applyChanges } from "./document.ts";
import { Importers } from "./importers.ts";

export interface ServerOptions {
  /**
   * Parse through the document's IncrementalParser (default) or with lang's parse(); both
   * read the whole text with the fast parser now (`bench/lsp` compares them).
   */
  incremental?: boolean;
  /** Delay between a change and its re-check. */
  debounceMs?: number;
  /** Streams (default: this process's stdin/stdout). */
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

export interface OpenDoc {
  uri: string;
  path: string;
  doc: TextDocument;
  parser: IncrementalParser;
  analysis: Analysis | null;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Shared state the feature handlers read. */
export class Workspace {
  readonly docs = new Map<string, OpenDoc>(); // by URI
  readonly byPath = new Map<string, OpenDoc>();
  readonly host: DenoHost;
  /** Finds the files that import a document (they make it their library). */
  readonly importers = new Importers();

  constructor(readonly incremental: boolean) {
    this.host = new DenoHost({
      buffers: { openText: (p) => this.byPath.get(p)?.doc.getText() },
    });
  }

  get(uri: string): OpenDoc | undefined {
    return this.docs.get(uri);
  }

  /** A document the editor opened (or reopened): its own parser, checked on first use. */
  open(uri: string, text: string, version = 1, languageId = "vmdesc"): OpenDoc {
    const path = uriToPath(uri);
    const d: OpenDoc = {
      uri,
      path,
      doc: TextDocument.create(uri, languageId, version, text),
      parser: createIncrementalParser(path, text),
      analysis: null,
      timer: undefined,
    };
    this.docs.set(uri, d);
    this.byPath.set(path, d);
    return d;
  }

  /** The current analysis of a document, computed now if a re-check is pending. */
  analysis(uri: string): Analysis | null {
    const d = this.docs.get(uri);
    if (!d) return null;
    if (!d.analysis || d.analysis.version !== d.doc.version) {
      d.analysis = analyze(
        d.path,
        d.doc.version,
        d.parser,
        this.host,
        this.incremental,
        this.importers,
      );
    }
    return d.analysis;
  }

  mapper(): SpanMapper {
    return new SpanMapper(this.host.source);
  }
}

export function startServer(opts: ServerOptions = {}): Promise<number> {
  // stdout carries the protocol: anything printed by accident must go to stderr.
  console.log = console.error;
  console.info = console.error;
  const connection = createConnection(
    ProposedFeatures.all,
    new StreamMessageReader(opts.input ?? process.stdin),
    new StreamMessageWriter(opts.output ?? process.stdout),
  );
  const ws = new Workspace(opts.incremental ?? true);
  const debounceMs = opts.debounceMs ?? 15;
  let shutdown = false;

  const publish = (d: OpenDoc) => {
    d.timer = undefined;
    if (!ws.docs.has(d.uri)) return;
    const version = d.doc.version;
    const a = ws.analysis(d.uri);
    // A newer change arrived while checking: its own timer publishes.
    if (!a || a.version !== d.doc.version || version !== d.doc.version) return;
    const importSpans = new Map<string, import("../lang/ast.ts").Span>();
    for (const imp of imports(a.ast)) {
      importSpans.set(ws.host.resolve(d.path, imp.path.value), imp.span);
    }
    const diagnostics = toLspDiagnostics(a.diagnostics, d.path, ws.mapper(), (file) => {
      // The direct import of this file, or of the file that (transitively) imported it.
      if (importSpans.has(file)) return importSpans.get(file)!;
      for (const [target, span] of importSpans) {
        if (a.program && reaches(a.program, ws.host, target, file)) return span;
      }
      return null;
    });
    connection.sendDiagnostics({ uri: d.uri, version, diagnostics });
  };

  const schedule = (d: OpenDoc, delay = debounceMs) => {
    if (d.timer !== undefined) clearTimeout(d.timer);
    d.timer = setTimeout(() => {
      try {
        publish(d);
      } catch (e) {
        connection.console.error(
          `vmdesc: checking ${d.path} failed: ${e instanceof Error ? e.stack : e}`,
        );
      }
    }, delay);
  };

  /** Other open documents that read `path` are re-checked too. */
  const scheduleDependents = (path: string) => {
    for (const other of ws.docs.values()) {
      if (other.path !== path && other.analysis?.deps.has(path)) {
        other.analysis = null;
        schedule(other);
      }
    }
  };

  connection.onInitialize((params): InitializeResult => {
    // Where the files importing a document are looked for (lsp/importers.ts).
    const folders = params.workspaceFolders?.map((f) => f.uri) ??
      (params.rootUri ? [params.rootUri] : []);
    ws.importers.roots = folders.filter((u) => u.startsWith("file:")).map(uriToPath);
    return {
      capabilities: {
        textDocumentSync: {
          openClose: true,
          change: TextDocumentSyncKind.Incremental,
          save: false,
        },
        hoverProvider: true,
        completionProvider: { triggerCharacters: TRIGGER_CHARACTERS, resolveProvider: false },
        definitionProvider: true,
        referencesProvider: true,
        renameProvider: { prepareProvider: true },
        documentSymbolProvider: true,
        documentFormattingProvider: true,
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
      },
      serverInfo: { name: "vmdesc", version: "0.1.0" },
    };
  });

  connection.onDidOpenTextDocument(({ textDocument: t }) => {
    const d = ws.open(t.uri, t.text, t.version, t.languageId);
    schedule(d, 0);
    scheduleDependents(d.path);
  });

  connection.onDidChangeTextDocument((p: DidChangeTextDocumentParams) => {
    const d = ws.get(p.textDocument.uri);
    if (!d) return;
    d.doc = applyChanges(d.doc, d.parser, p.contentChanges, p.textDocument.version);
    d.analysis = null;
    schedule(d);
    scheduleDependents(d.path);
  });

  connection.onDidCloseTextDocument(({ textDocument }) => {
    const d = ws.get(textDocument.uri);
    if (!d) return;
    if (d.timer !== undefined) clearTimeout(d.timer);
    ws.docs.delete(d.uri);
    ws.byPath.delete(d.path);
    connection.sendDiagnostics({ uri: d.uri, diagnostics: [] });
    scheduleDependents(d.path);
  });

  connection.onDidChangeWatchedFiles(({ changes }) => {
    for (const c of changes) {
      const path = uriToPath(c.uri);
      ws.host.invalidate(path);
      scheduleDependents(path);
    }
    // Files created or deleted change where importers may be.
    ws.importers.forgetListings();
  });

  connection.onHover((p) => guard(() => hover(ws, p)));
  connection.onCompletion((p) => guard(() => completion(ws, p)));
  connection.onDefinition((p) => guard(() => definition(ws, p)));
  connection.onReferences((p) => guard(() => references(ws, p)));
  connection.onPrepareRename((p) => guard(() => prepareRename(ws, p)));
  connection.onRenameRequest((p) => {
    try {
      return rename(ws, p);
    } catch (e) {
      if (e instanceof ResponseError) return e; // an invalid new name: tell the user
      connection.console.error(`vmdesc: ${e instanceof Error ? e.stack : e}`);
      return null;
    }
  });
  connection.onDocumentSymbol((p) => guard(() => documentSymbols(ws, p)));
  connection.onDocumentFormatting((p) => guard(() => formatDocument(ws, p)));
  connection.onCodeAction((p) => guard(() => codeActions(ws, p)));

  // A failing feature must not take the server down: log it and answer "nothing".
  function guard<T>(f: () => T): T | null {
    try {
      return f();
    } catch (e) {
      connection.console.error(`vmdesc: ${e instanceof Error ? e.stack : e}`);
      return null;
    }
  }

  return new Promise<number>((resolve) => {
    connection.onShutdown(() => {
      shutdown = true;
      for (const d of ws.docs.values()) if (d.timer !== undefined) clearTimeout(d.timer);
    });
    connection.onExit(() => {
      for (const d of ws.docs.values()) if (d.timer !== undefined) clearTimeout(d.timer);
      resolve(shutdown ? 0 : 1);
    });
    connection.listen();
  });
}

/** Whether `from` imports `to`, directly or through other files. */
function reaches(
  program: NonNullable<Analysis["program"]>,
  host: DenoHost,
  from: string,
  to: string,
): boolean {
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const f = stack.pop()!;
    if (f === to) return true;
    if (seen.has(f)) continue;
    seen.add(f);
    const sf = program.files.get(f);
    if (!sf) continue;
    for (const imp of imports(sf.ast)) stack.push(host.resolve(f, imp.path.value));
  }
  return false;
}

export type { Connection };
