#!/usr/bin/env bash
# Creates the Python venv used by the strict client check (tests/sdk_strict.rs runs
# tests/sdk/strict_events.py with it): $ROOT/.venv-sdk with the OpenAI SDK from PyPI.
# Idempotent: does nothing when the venv already imports the right SDK.
set -euo pipefail

# The SDK's typed models are generated from OpenAI's spec; a major version bump may
# rename them, so stay on 2.x.
SPEC="openai>=2,<3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-sdk"
PY="$VENV/bin/python"

check() {
    "$PY" - <<'PY' 2>/dev/null
import openai
from openai.types.responses import Response, ResponseStreamEvent  # noqa: F401
assert openai.__version__.startswith("2."), openai.__version__
print(f"openai {openai.__version__}")
PY
}

if [ -x "$PY" ] && check; then
    echo "SDK venv ready at $VENV"
    exit 0
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1; then
            PYTHON="$candidate"
            break
        fi
    done
fi
if [ -z "$PYTHON" ]; then
    echo "error: python3 is required for the strict SDK check (install python3 and python3-venv)" >&2
    exit 1
fi

rm -rf "$VENV"
echo "creating $VENV with $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv "$VENV"
"$PY" -m pip install --quiet --disable-pip-version-check "$SPEC"

if ! check; then
    echo "error: $VENV does not import the OpenAI SDK after installation" >&2
    exit 1
fi
echo "SDK venv ready at $VENV"
