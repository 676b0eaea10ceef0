#!/usr/bin/env bash
# CI for the VS Code extension: build, unit tests, .vsix, then the in-editor integration tests and the
# browser end-to-end test (both need code-server, installed once into $ADW_CODE_SERVER_DIR, and the ADW
# Python package in $ADW_PYTHON, default <repo>/.venv/bin/python).
#   ADW_SKIP_BROWSER=1  skips the browser end-to-end test.
# Screenshots of the end-to-end run go to extension/test-results/screenshots (docs/images is only
# refreshed by running `npm run test:e2e` by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
lap() { echo "== $1 ($((SECONDS - t0))s)"; }
npm ci --no-audit --no-fund
npm run compile
npm test
npm run package
lap "build, unit tests and adw.vsix done"
scripts/install-code-server.sh
lap "code-server ready"
node e2e/integration.mjs
ADW_RESTRICTED=1 node e2e/integration.mjs   # untrusted workspace: nothing starts
ADW_MULTIROOT=1 node e2e/integration.mjs    # two repositories in one window: one server, views grouped
lap "integration tests passed"
if [ -z "${ADW_SKIP_BROWSER:-}" ]; then
  ADW_SCREENSHOTS=${ADW_SCREENSHOTS:-$PWD/test-results/screenshots} node e2e/browser.mjs
  lap "browser end-to-end test passed"
fi
