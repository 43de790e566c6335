// Rebuild static/vendor/codemirror.min.js and its licence file from the locked npm packages:
//   cd server/escape_vo/web/frontend && npm ci && npm run build     (or: make vendor)
import { build } from "esbuild";
import { readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "vendor");

const result = await build({
  entryPoints: [join(here, "src", "index.js")],
  bundle: true,
  minify: true,
  format: "iife",
  globalName: "CM",
  target: ["es2020"],
  legalComments: "none",
  metafile: true,
  outfile: join(out, "codemirror.min.js"),
});

// One licence text per bundled package, so the vendored file carries its licences with it.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (!m || packages.has(m[1])) continue;
  const dir = join(here, "node_modules", m[1]);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file) throw new Error(`no licence file in ${m[1]}`);
  packages.set(m[1], { version: pkg.version, license: pkg.license, text: readFileSync(join(dir, file), "utf8") });
}
const names = [...packages.keys()].sort();
let text = "Third-party code bundled into codemirror.min.js (built by frontend/build.mjs):\n\n";
for (const name of names) {
  const p = packages.get(name);
  text += `${"=".repeat(78)}\n${name} ${p.version} (${p.license})\n${"=".repeat(78)}\n${p.text.trim()}\n\n`;
}
writeFileSync(join(out, "codemirror.LICENSES.txt"), text);
console.log(`wrote ${join(out, "codemirror.min.js")} (${names.length} packages: ${names.join(", ")})`);
