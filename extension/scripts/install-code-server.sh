#!/usr/bin/env bash
# Installs code-server 4.100.3 (VS Code 1.100.3, the newest release that runs on Node 20) for the in-editor
# and browser tests, into $ADW_CODE_SERVER_DIR (default ~/.cache/adw-code-server). Idempotent: a finished
# install is reused. Needs the Debian packages below (installed when run as root) and the npm registry.
set -euo pipefail
VERSION=4.100.3
DEST=${ADW_CODE_SERVER_DIR:-$HOME/.cache/adw-code-server}
if [ -x "$DEST/node_modules/.bin/code-server" ] && [ -f "$DEST/.installed-$VERSION" ]; then
  echo "code-server $VERSION already in $DEST"; exit 0
fi
if [ "$(id -u)" = 0 ] && ! dpkg -s libkrb5-dev ripgrep chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    build-essential python3 pkg-config libkrb5-dev ripgrep chromium >/dev/null
fi
mkdir -p "$DEST"; cd "$DEST"
[ -f package.json ] || echo '{"private": true}' > package.json
export npm_config_yes=true          # node-pty's postinstall runs `npx node-gyp`
export npm_config_unsafe_perm=true  # code-server's postinstall refuses to run as root without it
export npm_config_nodedir=${npm_config_nodedir:-/usr}  # Node headers from the nodejs .deb (no download)
# @vscode/ripgrep downloads rg from GitHub in its postinstall: seed its cache with Debian's rg instead.
CACHE="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"; mkdir -p "$CACHE"
tar czf "$CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
npm install --no-save --no-audit --no-fund "code-server@$VERSION" >install.log 2>&1 || { tail -40 install.log; exit 1; }
touch ".installed-$VERSION"
echo "installed code-server $VERSION in $DEST"
