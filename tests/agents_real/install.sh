#!/bin/sh
# Install the real agent CLIs that tests/agents_real runs against, pinned, into a cache folder (not globally).
# Usage: tests/agents_real/install.sh [DIR]   (default: $ADW_AGENT_CLIS or ~/.cache/adw-agent-clis)
# The binaries end up in DIR/node_modules/.bin/{claude,codex}; an install that is already there is kept.
set -eu
CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
dir=${1:-${ADW_AGENT_CLIS:-$HOME/.cache/adw-agent-clis}}
mkdir -p "$dir"
bin="$dir/node_modules/.bin"
if [ -x "$bin/claude" ] && [ -x "$bin/codex" ] \
    && "$bin/claude" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION " \
    && "$bin/codex" --version 2>/dev/null | grep -q " $CODEX_VERSION$"; then
    echo "agent CLIs already installed in $dir"
    exit 0
fi
# Optional dependencies hold the native binaries; without them only a stub is left.
npm install --prefix "$dir" --no-audit --no-fund --include=optional \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION"
"$bin/claude" --version
"$bin/codex" --version
