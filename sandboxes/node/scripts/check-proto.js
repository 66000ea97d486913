#!/usr/bin/env node
// Checks that this package's copy of the contract equals the repository's
// (../../proto/polyhost/runtime/v1/runtime.proto). With --write, copies the repository's over ours.
// When the package is used outside the repository (no such file), there is nothing to compare.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const packageDir = path.resolve(__dirname, "..");
const relative = path.join("polyhost", "runtime", "v1", "runtime.proto");
const ours = path.join(packageDir, "proto", relative);
const theirs = path.resolve(packageDir, "..", "..", "proto", relative);

if (!fs.existsSync(theirs)) {
  console.log(`check-proto: ${path.relative(process.cwd(), theirs) || theirs} not found (package used alone); nothing to compare`);
  process.exit(0);
}
const expected = fs.readFileSync(theirs, "utf8");
const actual = fs.existsSync(ours) ? fs.readFileSync(ours, "utf8") : null;

if (actual === expected) {
  console.log(`check-proto: proto/${relative} matches the repository's`);
  process.exit(0);
}
if (process.argv.includes("--write")) {
  fs.mkdirSync(path.dirname(ours), { recursive: true });
  fs.writeFileSync(ours, expected);
  console.log(`check-proto: copied ${theirs} to proto/${relative}`);
  process.exit(0);
}

let detail = "the file is missing";
if (actual !== null) {
  const a = actual.split("\n");
  const e = expected.split("\n");
  let line = 0;
  while (line < Math.max(a.length, e.length) && a[line] === e[line]) line++;
  detail = `first difference at line ${line + 1}:\n  repository: ${JSON.stringify(e[line] ?? "<end of file>")}\n  package:    ${JSON.stringify(a[line] ?? "<end of file>")}`;
}
console.error(
  `check-proto: proto/${relative} differs from ${theirs}\n${detail}\n` +
    "The repository's file is the contract: update the copy with `npm run check-proto -- --write` and rebuild.",
);
process.exit(1);
