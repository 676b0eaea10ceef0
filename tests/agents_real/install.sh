#!/bin/sh
# Install the real agent CLIs that tests/agents_real runs against, pinned, into a cache folder (not globally):
#   DIR/node_modules/.bin/{claude,codex}  from npm (~800 MB with their native binaries, ~15 s)
#   DIR/node_modules/.bin/{claude-code-acp,codex-acp}  their ACP adapters from npm (+~230 MB, ~30 s)
#   DIR/aider/bin/aider                   a virtualenv with aider-chat from PyPI (~690 MB, ~45 s)
# Usage: tests/agents_real/install.sh [DIR]   (default: $ADW_AGENT_CLIS or ~/.cache/adw-agent-clis)
# What is already installed at the pinned version is kept, so a second run takes about a second.
set -eu
CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
AIDER_VERSION=0.86.2
CLAUDE_CODE_ACP_VERSION=0.16.2
CODEX_ACP_VERSION=0.16.0
dir=${1:-${ADW_AGENT_CLIS:-$HOME/.cache/adw-agent-clis}}
mkdir -p "$dir"
bin="$dir/node_modules/.bin"

if "$bin/claude" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION " \
    && "$bin/codex" --version 2>/dev/null | grep -q " $CODEX_VERSION$"; then
    echo "claude $CLAUDE_CODE_VERSION and codex $CODEX_VERSION already in $dir"
else
    # The optional dependencies hold the native binaries; without them only a stub is left.
    npm install --prefix "$dir" --no-audit --no-fund --include=optional \
        "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION"
fi

# The ACP adapters print no version: their package.json says which one is there.
installed() { node -p "require('$dir/node_modules/$1/package.json').version" 2>/dev/null; }
if [ "$(installed @zed-industries/claude-code-acp)" = "$CLAUDE_CODE_ACP_VERSION" ] \
    && [ "$(installed @zed-industries/codex-acp)" = "$CODEX_ACP_VERSION" ]; then
    echo "claude-code-acp $CLAUDE_CODE_ACP_VERSION and codex-acp $CODEX_ACP_VERSION already in $dir"
else
    npm install --prefix "$dir" --no-audit --no-fund --include=optional \
        "@zed-industries/claude-code-acp@$CLAUDE_CODE_ACP_VERSION" "@zed-industries/codex-acp@$CODEX_ACP_VERSION"
fi

if "$dir/aider/bin/aider" --version 2>/dev/null | grep -q " $AIDER_VERSION$"; then
    echo "aider $AIDER_VERSION already in $dir/aider"
else
    python3 -m venv "$dir/aider"
    "$dir/aider/bin/pip" install -q "aider-chat==$AIDER_VERSION"
fi

"$bin/claude" --version
"$bin/codex" --version
"$dir/aider/bin/aider" --version
echo "claude-code-acp $(installed @zed-industries/claude-code-acp), codex-acp $(installed @zed-industries/codex-acp)"
