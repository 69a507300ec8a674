#!/usr/bin/env bash
# Bounded fuzzing of the pure core with cargo-fuzz (libFuzzer): request conversion, SSE
# decoding + stream conversion, response conversion. FUZZ_SECONDS per target (default 30).
# cargo-fuzz needs nightly compiler flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
FUZZ="$ROOT/.tools/bin/cargo-fuzz"
if [ ! -x "$FUZZ" ]; then
    cargo install cargo-fuzz --locked --root "$ROOT/.tools"
fi
export RUSTC_BOOTSTRAP=1
cd "$ROOT/fuzz"
"$FUZZ" build -O
for target in request stream response; do
    work="$(mktemp -d)"
    echo "fuzzing $target for ${SECONDS_PER_TARGET}s"
    "$FUZZ" run -O "$target" "$work" "seeds/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E "^(Done|stat::number_of_executed_units)|ERROR|panicked" || true
    rm -rf "$work"
    if ls artifacts/"$target"/crash-* >/dev/null 2>&1; then
        echo "fuzz target $target found a crash: fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "fuzzing: 3 targets, ${SECONDS_PER_TARGET}s each, no crash"
