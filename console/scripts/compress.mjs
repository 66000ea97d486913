// Writes NAME.gz beside every text file of the build, so the server sends gzip without
// compressing on each request. Prints nothing; fails if the build folder is missing.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const root = new URL("../../host/polyhost/server/console_dist/", import.meta.url).pathname;
const TEXT = /\.(html|js|mjs|css|svg|json|txt|map)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (TEXT.test(name)) writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: 9 }));
  }
}

walk(root);
