// Starts `linkstar lsp` for .flow files; everything else (highlighting aside) comes from the server.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("linkstar")
    .get("server.command", ["linkstar", "lsp"]);
  client = new LanguageClient(
    "linkstar",
    "LinkStar flows",
    { command, args },
    { documentSelector: [{ language: "linkstar" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
