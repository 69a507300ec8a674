#!/usr/bin/env bash
# bench/ab.sh OLD_BIN NEW_BIN [LABEL] — two builds of the proxy side by side in one run,
# 127.0.0.1 only: the same mock upstream (examples/bench_mock_upstream), the same bodies
# (the tiny create with `store: false`; Codex's 45 KiB request, non-stream and stream), wrk
# saturating ($CONNS connections, $DURATION s), the builds alternating for $ROUNDS rounds so
# that the machine's drift falls on both. CPU per request from /proc/<pid>/stat deltas.
# The table (medians, NEW/OLD ratios) goes to bench/results/ab-$LABEL.md.
#
# Knobs: DURATION (s, 6) CONNS (50) ROUNDS (3) PORT_BASE (18500) CHUNKS (50).
set -euo pipefail

OLD="${1:?old binary}"
NEW="${2:?new binary}"
LABEL="${3:-ab}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-6}"
CONNS="${CONNS:-50}"
ROUNDS="${ROUNDS:-3}"
PORT_BASE="${PORT_BASE:-18500}"
CHUNKS="${CHUNKS:-50}"
MOCK_PORT=$((PORT_BASE + 1))
PROXY_PORT=$((PORT_BASE + 2))
BIN="$ROOT/target/release"
WORK="$(mktemp -d /tmp/ccp-ab.XXXXXX)"
CLK_TCK="$(getconf CLK_TCK)"
PIDS=()
OUT="$ROOT/bench/results/ab-$LABEL.md"

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq; apt-get install -y -qq wrk >/dev/null; }
[ -x "$BIN/examples/bench_mock_upstream" ] || cargo build --release --example bench_mock_upstream
ulimit -n 65536 2>/dev/null || true

# wait_port, cpu_ticks
. "$ROOT/bench/lib.sh"

FIXTURE="$ROOT/tests/fixtures/codex-0.169/turn1-text.json"
cp "$FIXTURE" "$WORK/sse.json"
sed '0,/"stream": true/s//"stream": false/' "$FIXTURE" >"$WORK/json.json"
printf '%s' '{"model": "mock-model", "input": "ping", "store": false}' >"$WORK/tiny.json"

"$BIN/examples/bench_mock_upstream" --listen "127.0.0.1:$MOCK_PORT" --chunks "$CHUNKS" \
  --slow-interval-ms 2000 --slow-secs 60 >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!; PIDS+=("$MOCK_PID"); wait_port "$MOCK_PORT" "$MOCK_PID"

mkdir -p "$WORK/logs"
cat >"$WORK/config.json" <<EOF
{ "listen": "127.0.0.1:$PROXY_PORT", "log_dir": "$WORK/logs", "store": {"type": "none"},
  "backends": [{ "name": "mock", "url": "http://127.0.0.1:$MOCK_PORT/v1", "provider": "openai",
                 "match_rules": { "default": true } }] }
EOF

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for which in old new; do
    bin="$OLD"; [ "$which" = new ] && bin="$NEW"
    "$bin" --config "$WORK/config.json" >"$WORK/proxy.log" 2>&1 &
    pid=$!; PIDS+=("$pid"); wait_port "$PROXY_PORT" "$pid"
    for body in tiny json sse; do
      url="http://127.0.0.1:$PROXY_PORT/v1/responses"
      BODY_FILE="$WORK/$body.json" timeout 60 wrk -t1 -c"$CONNS" -d1s -s bench/wrk-post.lua "$url" >/dev/null
      t0=$(cpu_ticks "$pid")
      out=$(BODY_FILE="$WORK/$body.json" timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" \
        --timeout 10s -s bench/wrk-post.lua "$url" | sed -n 's/^WRK_JSON //p')
      t1=$(cpu_ticks "$pid")
      python3 - "$out" "$which" "$body" "$round" $((t1 - t0)) "$CLK_TCK" >>"$RESULTS" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); which, body, rnd, ticks, clk = sys.argv[2:7]
n = max(r["requests"], 1)
rps = r["requests"] * 1e6 / r["duration_us"]
cpu = int(ticks) * 1e6 / int(clk) / n
bad = r.get("errors", 0) + r.get("non2xx", 0)
print(f"{which}\t{body}\t{rnd}\t{rps:.1f}\t{cpu:.1f}\t{bad}")
EOF
      tail -n1 "$RESULTS" >&2
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done

python3 - "$RESULTS" "$OUT" "$OLD" "$NEW" "$DURATION" "$CONNS" "$ROUNDS" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
out, old, new, dur, conns, rounds = sys.argv[2:8]
def med(which, body, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == which and r[1] == body)
lines = [f"# A/B: `{old}` (old) vs `{new}` (new)", "",
         f"wrk -t1 -c{conns} -d{dur}s, {rounds} alternating rounds, medians; store off.", "",
         "| body | old req/s | new req/s | new/old | old CPU µs/req | new CPU µs/req | new/old | errors (old, new) |",
         "|---|---|---|---|---|---|---|---|"]
names = {"tiny": "tiny create", "json": "Codex 45 KiB, non-stream", "sse": "Codex 45 KiB, stream"}
for body in ("tiny", "json", "sse"):
    o, n = med("old", body, 3), med("new", body, 3)
    oc, nc = med("old", body, 4), med("new", body, 4)
    eo = sum(int(r[5]) for r in rows if r[0] == "old" and r[1] == body)
    en = sum(int(r[5]) for r in rows if r[0] == "new" and r[1] == body)
    lines.append(f"| {names[body]} | {o:,.0f} | {n:,.0f} | {n/o:.2f}× | {oc:.1f} | {nc:.1f} | {nc/oc:.2f}× | {eo}, {en} |")
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
