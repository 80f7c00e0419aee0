// Build the viewer into build/ (committed, so the app needs no node): one minified bundle,
// build/viewer.js, plus index.html and style.css. `npm ci && npm run build` (scripts/build_viewer.sh).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

const out = "build";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outfile: `${out}/viewer.js`,
  banner: { js: "window.__viewerScriptStart = performance.now();" },
  legalComments: "eof",
  logLevel: "info",
});
for (const file of ["index.html", "style.css"]) copyFileSync(`src/${file}`, `${out}/${file}`);
