// The netc extension: the .net language (grammar and language configuration come from
// package.json) and a client for the netc language server, `netc lsp` over stdio.
// Set `netc.server.command` to the netc of your environment (e.g. /path/to/.venv/bin/netc).
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("netc");
  const command = config.get("server.command", "netc");
  const args = config.get("server.args", ["lsp"]);
  const serverOptions = {
    run: { command, args, transport: TransportKind.stdio },
    debug: { command, args, transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "netc" }, { scheme: "untitled", language: "netc" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.net") },
  };
  client = new LanguageClient("netc", "netc language server", serverOptions, clientOptions);
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
