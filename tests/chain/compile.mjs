// Compiles every contracts/*.sol with solc-js (npm), resolving @openzeppelin/ from node_modules.
// Prints {"ContractName": {"abi": [...], "bytecode": "0x..."}} on stdout.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
const dir = path.join(root, "contracts");
const sources = {};
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".sol"))) {
  sources[f] = { content: fs.readFileSync(path.join(dir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun",
              outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
};
function findImports(p) {
  const candidate = path.join(root, "node_modules", p);
  return fs.existsSync(candidate) ? { contents: fs.readFileSync(candidate, "utf8") } : { error: `not found: ${p}` };
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  process.stderr.write(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const out = {};
for (const file of Object.keys(sources)) {
  for (const [name, c] of Object.entries(output.contracts[file] || {})) {
    out[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
process.stdout.write(JSON.stringify(out));
