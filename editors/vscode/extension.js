// vmdesc VS Code client: starts `vmdesc lsp --stdio` (command configurable) and hands it
// every `vmdesc` document. All language smarts live in the server; this file only wires it up.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

/** @type {LanguageClient | undefined} */
let client;

function serverOptions() {
  const cfg = vscode.workspace.getConfiguration("vmdesc");
  const command = cfg.get("server.command") ?? ["vmdesc", "lsp", "--stdio"];
  if (!Array.isArray(command) || command.length === 0) {
    throw new Error("vmdesc.server.command must be a non-empty array of strings");
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const cwd = cfg.get("server.cwd") || folder || undefined;
  // The server speaks on stdio; the `--stdio` flag is already part of the command.
  const executable = {
    command: command[0],
    args: command.slice(1),
    transport: TransportKind.stdio,
    options: { cwd },
  };
  return { run: executable, debug: executable };
}

async function start(context) {
  const clientOptions = {
    documentSelector: [{ language: "vmdesc" }],
    synchronize: {
      // Imported files may change on disk; the server re-checks importers.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.vmdesc"),
    },
  };
  client = new LanguageClient("vmdesc", "vmdesc language server", serverOptions(), clientOptions);
  await client.start();
  context.subscriptions.push({ dispose: () => client?.stop() });
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("vmdesc.restartServer", async () => {
      if (client) await client.stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration("vmdesc.server")) {
        if (client) await client.stop();
        await start(context);
      }
    }),
  );
  try {
    await start(context);
  } catch (err) {
    vscode.window.showErrorMessage(
      `vmdesc: could not start the language server (${err?.message ?? err}). ` +
        "Set `vmdesc.server.command` to a working command.",
    );
  }
}

async function deactivate() {
  if (client) await client.stop();
}

module.exports = { activate, deactivate };
