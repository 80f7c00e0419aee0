#!/usr/bin/env bash
# Rebuild the 3D cuboid viewer's frontend into apps/components/cuboid_viewer/frontend/build/.
# The build is committed, so running the app needs no node; run this after changing frontend/src/.
#   1. npm ci          the exact versions in package-lock.json (three.js, esbuild);
#   2. npm run build   esbuild bundles src/ into build/viewer.js, next to index.html and style.css;
#   3. npm test        node --test on the geometry and the editor (no browser needed).
set -euo pipefail
cd "$(dirname "$0")/../apps/components/cuboid_viewer/frontend"
if ! command -v npm >/dev/null; then
  echo "[build_viewer] npm is needed to rebuild the viewer (sudo apt-get install nodejs npm);" >&2
  echo "[build_viewer] the app itself runs from the committed build/ without it." >&2
  exit 1
fi
npm ci --no-audit --no-fund
npm run build
npm test
