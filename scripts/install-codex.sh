#!/usr/bin/env bash
# Installs the Codex CLI versions used by the end-to-end tests (idempotent: does nothing
# when the right version is already there):
#   0.169.0 into $ROOT/.codex-cli        (tests/common/codex.rs: codex_bin)
#   0.171.0 into $ROOT/.codex-cli-0.171  (codex_bin_0171: WebSocket mode, remote compaction)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

install_version() {
    local version="$1" prefix="$2"
    local bin="$prefix/node_modules/.bin/codex"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF "$version"; then
        echo "codex $version already installed at $bin"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "error: npm is required to install @openai/codex@$version (install Node.js >= 18)" >&2
        exit 1
    fi
    mkdir -p "$prefix"
    echo "installing @openai/codex@$version into $prefix"
    npm install --prefix "$prefix" --no-audit --no-fund "@openai/codex@$version"
    if ! "$bin" --version 2>/dev/null | grep -qF "$version"; then
        echo "error: $bin does not report version $version after installation" >&2
        exit 1
    fi
    echo "codex $("$bin" --version) installed at $bin"
}

install_version "0.169.0" "$ROOT/.codex-cli"
install_version "0.171.0" "$ROOT/.codex-cli-0.171"
