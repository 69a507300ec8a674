#!/usr/bin/env bash
# Installs the Codex CLI used by the end-to-end tests into $ROOT/.codex-cli
# (idempotent: does nothing when the right version is already there).
set -euo pipefail

VERSION="0.169.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.codex-cli"
BIN="$PREFIX/node_modules/.bin/codex"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -qF "$VERSION"; then
    echo "codex $VERSION already installed at $BIN"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is required to install @openai/codex@$VERSION (install Node.js >= 18)" >&2
    exit 1
fi

mkdir -p "$PREFIX"
echo "installing @openai/codex@$VERSION into $PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund "@openai/codex@$VERSION"

if ! "$BIN" --version 2>/dev/null | grep -qF "$VERSION"; then
    echo "error: $BIN does not report version $VERSION after installation" >&2
    exit 1
fi
echo "codex $("$BIN" --version) installed at $BIN"
