// Tokenizes .net files with the extension's TextMate grammar (vscode-textmate and
// vscode-oniguruma, VS Code's own engine) and fails on any token scoped "invalid" or any
// non-blank text left with no scope of its own. Usage: node tests/scopes.js FILE...
// (default: the repository's examples/*.net and specs/std/*.net). Prints one line per file.
"use strict";

const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const here = path.resolve(__dirname, "..");
const root = path.resolve(here, "..", "..");

function defaultFiles() {
  const out = [];
  for (const dir of ["examples", path.join("specs", "std")]) {
    for (const f of fs.readdirSync(path.join(root, dir)).sort()) {
      if (f.endsWith(".net")) out.push(path.join(root, dir, f));
    }
  }
  return out;
}

async function main() {
  const wasm = fs.readFileSync(path.join(here, "node_modules", "vscode-oniguruma", "release", "onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) => {
      if (scopeName !== "source.netc") return null;
      const file = path.join(here, "syntaxes", "netc.tmLanguage.json");
      return vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
    },
  });
  const grammar = await registry.loadGrammar("source.netc");
  const files = process.argv.length > 2 ? process.argv.slice(2) : defaultFiles();
  let failed = 0;
  for (const file of files) {
    const lines = fs.readFileSync(file, "utf8").split(/\r\n|\r|\n/);
    let stack = vsctm.INITIAL;
    const bad = [];
    let tokens = 0;
    lines.forEach((line, i) => {
      const r = grammar.tokenizeLine(line, stack);
      for (const t of r.tokens) {
        const text = line.slice(t.startIndex, t.endIndex);
        if (!text.trim()) continue;
        tokens++;
        if (t.scopes.some((s) => s.startsWith("invalid")) || t.scopes.length < 2) {
          bad.push(`${file}:${i + 1}:${t.startIndex + 1}: ${JSON.stringify(text)} scoped ${t.scopes.join(" ")}`);
        }
      }
      stack = r.ruleStack;
    });
    if (bad.length) {
      failed++;
      console.log(bad.join("\n"));
    } else {
      console.log(`ok ${file} (${tokens} tokens)`);
    }
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
