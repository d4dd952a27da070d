#!/usr/bin/env bash
# Copy the front-end assets pinned in package.json (npm registry) into static/vendor/, maps included:
# ManifestStaticFilesStorage post-processes sourceMappingURL comments and fails on a missing .map.
# The copies are committed, so neither CI nor production needs npm or a CDN. Run after changing package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --silent
vendor=static/vendor
rm -rf "$vendor"
mkdir -p "$vendor/bootstrap" "$vendor/htmx" "$vendor/chartjs"
cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/dist/css/bootstrap.min.css.map "$vendor/bootstrap/"
cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js node_modules/bootstrap/dist/js/bootstrap.bundle.min.js.map "$vendor/bootstrap/"
cp node_modules/bootstrap/LICENSE "$vendor/bootstrap/LICENSE"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx/"
cp node_modules/htmx.org/LICENSE "$vendor/htmx/LICENSE"
cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map "$vendor/chartjs/"
cp node_modules/chart.js/LICENSE.md "$vendor/chartjs/LICENSE.md"
for pkg in bootstrap htmx.org chart.js; do
  printf '%s %s\n' "$pkg" "$(node -p "require('./node_modules/$pkg/package.json').version")"
done > "$vendor/VERSIONS"
cat "$vendor/VERSIONS"
