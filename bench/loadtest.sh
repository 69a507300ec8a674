#!/usr/bin/env bash
# make loadtest — one side-by-side load test on this machine, 127.0.0.1 only.
#
#   (1) direct      the load generator straight to the mock Chat upstream
#   (2) pingora     a minimal Pingora pass-through (examples/bench_passthrough.rs)
#   (3) nginx       nginx as a pass-through (Debian's package, own config and prefix)
#   (4) convert     codex-convert-proxy (release build) converting
#
# then the costs issue #19 names, each side by side in the same run: a tiny create
# (`{"model", "input": "ping"}`) with the response store on (the default, what the SDKs send)
# and off, against Pingora passing the same tiny Chat request; the Codex request with the
# store on; and the memory of idle WebSocket sessions (one turn each, then idle) against
# their history (1 KiB, 100 KiB) and their count (up to $WS_SESSIONS, RSS sampled on the way).
#
# each non-stream (`json`) and stream (`sse`), saturated (wrk, closed loop, $CONNS
# connections for $DURATION s) and rate-limited (oha -q $RATE, open loop, for the p99 added
# latency); then $STREAMS concurrent open streams against a slow upstream for the memory per
# open stream. CPU per request comes from /proc/<pid>/stat (utime+stime) deltas, RSS from
# /proc/<pid>/status. Results: bench/results/{runs.jsonl,loadtest.json,summary.md,loadtest.svg}.
#
# Installs what is missing: wrk and nginx from Debian (apt-get), oha from crates.io into
# .tools/. Every server it starts is stopped on exit; every run is bounded in time.
#
# Knobs: DURATION (s, default 8) CONNS (50) RATE (1000) RATE_SECS (8) STREAMS (2000)
#        CHUNKS (SSE chunks per mock stream, 50) PORT_BASE (18300) SKIP_BUILD=1
#        WS_SESSIONS (10000) STORE_ROUNDS (interleaved store on/off rounds, 3)
#        ONLY (a space-separated subset of: base store ws growth)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-8}"
CONNS="${CONNS:-50}"
STORE_ROUNDS="${STORE_ROUNDS:-3}"
RATE="${RATE:-1000}"
RATE_SECS="${RATE_SECS:-8}"
STREAMS="${STREAMS:-2000}"
WS_SESSIONS="${WS_SESSIONS:-10000}"
ONLY="${ONLY:-base store ws growth}"
CHUNKS="${CHUNKS:-50}"
PORT_BASE="${PORT_BASE:-18300}"
MOCK_PORT=$((PORT_BASE + 1))
PINGORA_PORT=$((PORT_BASE + 10))
NGINX_PORT=$((PORT_BASE + 11))
CONVERT_PORT=$((PORT_BASE + 20))
OUT="$ROOT/bench/results"
TOOLS="$ROOT/.tools"
FIXTURE="$ROOT/tests/fixtures/codex-0.169/turn1-text.json"
WORK="$(mktemp -d /tmp/ccp-loadtest.XXXXXX)"
CLK_TCK="$(getconf CLK_TCK)"
PIDS=()

log() { printf '[loadtest %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    # bounded wait: 5 s, then SIGKILL
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  # Debian starts services on install unless policy-rc.d forbids it: never start the
  # system nginx.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
}
command -v wrk >/dev/null || { log "installing wrk (apt)"; apt_install wrk; }
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || { log "installing nginx (apt)"; apt_install nginx; NGINX=/usr/sbin/nginx; }
OHA="$TOOLS/bin/oha"
if [ ! -x "$OHA" ]; then
  log "installing oha into .tools/ (cargo install, a few minutes)"
  cargo install oha --locked --root "$TOOLS" >/dev/null 2>&1
fi
command -v python3 >/dev/null || { log "installing python3 (apt)"; apt_install python3; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building (release): the proxy and the bench examples"
  cargo build --release --bin codex-convert-proxy \
    --example bench_mock_upstream --example bench_passthrough --example bench_hold_streams \
    --example bench_ws_sessions
fi
BIN="$ROOT/target/release"
for b in "$BIN/codex-convert-proxy" "$BIN/examples/bench_mock_upstream" \
  "$BIN/examples/bench_passthrough" "$BIN/examples/bench_hold_streams" \
  "$BIN/examples/bench_ws_sessions"; do
  [ -x "$b" ] || { echo "missing $b (run without SKIP_BUILD=1)" >&2; exit 1; }
done

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
for port in $MOCK_PORT $PINGORA_PORT $NGINX_PORT $CONVERT_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use: set PORT_BASE" >&2; exit 1
  fi
done

# ---------------------------------------------------------------- bodies
# The converting runs POST a real Codex request; the pass-through runs post the same bytes.
BODY_SSE="$WORK/body-sse.json"
BODY_JSON="$WORK/body-json.json"
cp "$FIXTURE" "$BODY_SSE"
BODY_JSON_STORE="$WORK/body-json-store.json"
python3 - "$FIXTURE" "$BODY_JSON" "$BODY_JSON_STORE" <<'EOF'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
assert json.loads(text)["stream"] is True
# Only the flag changes: same bytes otherwise (the fixture is pretty-printed).
out = text.replace('"stream": true', '"stream": false', 1)
assert json.loads(out)["stream"] is False
open(sys.argv[2], "w", encoding="utf-8").write(out)
# The same request stored (the SDKs' default): only the store flag changes.
stored = out.replace('"store": false', '"store": true', 1)
assert json.loads(stored)["store"] is True
open(sys.argv[3], "w", encoding="utf-8").write(stored)
EOF

# The tiny create, with the store on (no `store`: the API's default) and off, and the same
# tiny request as Chat for the pass-through.
BODY_TINY_STORE="$WORK/body-tiny-store.json"
BODY_TINY="$WORK/body-tiny.json"
BODY_TINY_CHAT="$WORK/body-tiny-chat.json"
printf '%s' '{"model": "mock-model", "input": "ping"}' >"$BODY_TINY_STORE"
printf '%s' '{"model": "mock-model", "input": "ping", "store": false}' >"$BODY_TINY"
printf '%s' '{"model": "mock-model", "messages": [{"role": "user", "content": "ping"}]}' >"$BODY_TINY_CHAT"

# ---------------------------------------------------------------- helpers
# wait_port, cpu_ticks
. "$ROOT/bench/lib.sh"
# The process and its children (nginx: master + workers).
family() { echo "$1"; pgrep -P "$1" || true; }

rss_kib() { # pids... → VmRSS sum
  local t=0 p v
  for p in "$@"; do
    v="$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || true)"
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

RUNS="$OUT/runs.jsonl"
mkdir -p "$OUT"
# A partial run (ONLY) replaces only its own groups' lines.
python3 - "$RUNS" "$ONLY" <<'EOF'
import json, os, sys
path, only = sys.argv[1], sys.argv[2].split()
def group(r):
    if r.get("kind") == "growth" or str(r.get("mode", "")).startswith("growth-"):
        return "growth"
    if r.get("kind") == "sessions":
        return "ws"
    if r.get("mode") in ("tiny", "tiny-store", "json-store", "json-nostore"):
        return "store"
    return "base"
keep = []
if os.path.exists(path):
    for line in open(path, encoding="utf-8"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if group(r) not in only:
            keep.append(line if line.endswith("\n") else line + "\n")
open(path, "w", encoding="utf-8").writelines(keep)
EOF

record() { # target mode kind pid url body json-from-tool
  python3 - "$@" <<'EOF' >>"$RUNS"
import json, sys
target, mode, kind, cpu_ticks, clk, rss, tool = sys.argv[1:8]
r = json.loads(tool)
r.update(target=target, mode=mode, kind=kind, rss_kib=int(rss))
n = max(r["requests"], 1)
r["cpu_us_per_req"] = round(int(cpu_ticks) * 1e6 / int(clk) / n, 1)
print(json.dumps(r))
EOF
  tail -n1 "$RUNS" >&2
}

run_wrk() { # target mode url body → JSON
  local target=$1 mode=$2 url=$3 body=$4 pids t0 t1 out
  pids=$(family "$SERVER_PID")
  BODY_FILE="$body" timeout 60 wrk -t1 -c"$CONNS" -d1s -s bench/wrk-post.lua "$url" >/dev/null # warm-up
  t0=$(cpu_ticks $pids)
  out=$(BODY_FILE="$body" timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s \
    -s bench/wrk-post.lua "$url" | sed -n 's/^WRK_JSON //p')
  t1=$(cpu_ticks $pids)
  out=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["rps"]=round(r["requests"]*1e6/r["duration_us"],1); print(json.dumps(r))' "$out")
  record "$target" "$mode" saturate $((t1 - t0)) "$CLK_TCK" "$(rss_kib $pids)" "$out"
}

run_oha() { # target mode url body → JSON (open loop at $RATE req/s)
  local target=$1 mode=$2 url=$3 body=$4 pids t0 t1 out
  pids=$(family "$SERVER_PID")
  t0=$(cpu_ticks $pids)
  out=$(timeout $((RATE_SECS + 60)) "$OHA" -z "${RATE_SECS}s" -q "$RATE" -c 32 --latency-correction \
    --no-tui --output-format json -m POST -T application/json -D "$body" "$url")
  t1=$(cpu_ticks $pids)
  out=$(python3 - "$out" <<'EOF'
import json, sys
o = json.loads(sys.argv[1])
s, p = o["summary"], o["latencyPercentiles"]
codes = o.get("statusCodeDistribution", {})
ok = int(codes.get("200", 0))
# requests still in flight when the duration ends are reported as aborted: not errors
errs = sum(int(v) for k, v in o.get("errorDistribution", {}).items() if "deadline" not in k)
print(json.dumps({
    "requests": ok + errs + sum(int(v) for k, v in codes.items() if k != "200"),
    "rps": round(s["requestsPerSec"], 1),
    "p50_us": round(p["p50"] * 1e6), "p90_us": round(p["p90"] * 1e6),
    "p99_us": round(p["p99"] * 1e6), "mean_us": round(s["average"] * 1e6, 1),
    "max_us": round(s["slowest"] * 1e6),
    "errors": errs, "non2xx": sum(int(v) for k, v in codes.items() if k != "200"),
}))
EOF
)
  record "$target" "$mode" rate $((t1 - t0)) "$CLK_TCK" "$(rss_kib $pids)" "$out"
}

start_mock() {
  "$BIN/examples/bench_mock_upstream" --listen "127.0.0.1:$MOCK_PORT" --chunks "$CHUNKS" \
    --slow-interval-ms 2000 --slow-secs 60 >"$WORK/mock.log" 2>&1 &
  MOCK_PID=$!; PIDS+=("$MOCK_PID"); wait_port "$MOCK_PORT" "$MOCK_PID"
}

start_pingora() {
  "$BIN/examples/bench_passthrough" --listen "127.0.0.1:$PINGORA_PORT" \
    --upstream "127.0.0.1:$MOCK_PORT" --threads "$(nproc)" >"$WORK/pingora.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port "$PINGORA_PORT" "$SERVER_PID"
}

start_nginx() {
  mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  client_max_body_size 32m;
  client_body_buffer_size 128k;
  keepalive_requests 1000000;
  upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
EOF
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log" \
    >"$WORK/nginx/out.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port "$NGINX_PORT" "$SERVER_PID"
  sleep 0.3 # workers up
}

start_convert() {
  rm -rf "$WORK/convert-logs" "$WORK/data"
  mkdir -p "$WORK/convert-logs"
  cat >"$WORK/convert.json" <<EOF
{
  "listen": "127.0.0.1:$CONVERT_PORT",
  "log_dir": "$WORK/convert-logs",
  "backends": [
    { "name": "mock", "url": "http://127.0.0.1:$MOCK_PORT/v1", "provider": "openai",
      "match_rules": { "default": true } },
    { "name": "slow", "url": "http://127.0.0.1:$MOCK_PORT/slow/v1", "provider": "openai",
      "match_rules": { "path_prefix": "/slow" } }
  ]
}
EOF
  "$BIN/codex-convert-proxy" --config "$WORK/convert.json" >"$WORK/convert.out" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port "$CONVERT_PORT" "$SERVER_PID"
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

settle() { # until the server is idle (its store writes done): no CPU for 0.5 s, ≤ 60 s
  local a b pids
  pids=$(family "$SERVER_PID")
  for _ in $(seq 120); do
    a=$(cpu_ticks $pids); sleep 0.5; b=$(cpu_ticks $pids)
    [ "$a" = "$b" ] && return 0
  done
  log "server still busy after 60 s"
}

hold_sessions() { # target history-bytes sessions [continuation-turns kind]
  local out
  out=$(timeout 300 "$BIN/examples/bench_ws_sessions" --addr "127.0.0.1:$CONVERT_PORT" \
    --path /v1/responses --history-bytes "$2" --sessions "$3" --turns "${4:-0}" \
    --clk-tck "$CLK_TCK" --pids "$(family "$SERVER_PID" | paste -sd,)" --timeout-secs 240)
  python3 -c 'import json,sys; r=json.loads(sys.argv[2]); r.update(target=sys.argv[1], mode="ws-"+sys.argv[3], kind=sys.argv[4]); print(json.dumps(r))' \
    "$1" "$out" "$2" "${5:-sessions}" >>"$RUNS"
  tail -n1 "$RUNS" >&2
}

history_body() { # bytes file: a streamed create whose input is that much conversation
  python3 - "$1" "$2" <<'EOF'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
items, total, i = [], 0, 0
while total < max(n, 1):
    k = min(max(n - total, 1), 1024)
    role = "user" if i % 2 == 0 else "assistant"
    kind = "input_text" if role == "user" else "output_text"
    text = (f"message {i}: " + "x" * k)[:k]
    items.append({"type": "message", "role": role, "content": [{"type": kind, "text": text}]})
    total += k
    i += 1
if i % 2 == 0:
    items.append({"type": "message", "role": "user", "content": "go on"})
json.dump({"model": "mock-model", "stream": True, "store": False, "input": items}, open(path, "w"))
EOF
}

check_reply() { # url body expect
  local got
  got=$(curl -s -m 10 -H 'Content-Type: application/json' --data-binary "@$2" "$1" || true)
  case "$got" in *"$3"*) ;; *) echo "unexpected reply from $1: ${got:0:300}" >&2; exit 1 ;; esac
}

hold_streams() { # target url-path
  local target=$1 path=$2 port=$3 out
  # one request first: lazy start-up allocations are not per-stream memory
  curl -s -m 70 -o /dev/null -H 'Content-Type: application/json' --data-binary "@$BODY_JSON" \
    "http://127.0.0.1:$port$path" || true
  sleep 0.5
  out=$(timeout 120 "$BIN/examples/bench_hold_streams" --addr "127.0.0.1:$port" --path "$path" \
    --body "$BODY_SSE" --streams "$STREAMS" --pids "$(family "$SERVER_PID" | paste -sd,)" \
    --timeout-secs 90)
  python3 -c 'import json,sys; r=json.loads(sys.argv[2]); r.update(target=sys.argv[1], mode="sse", kind="streams"); print(json.dumps(r))' \
    "$target" "$out" >>"$RUNS"
  tail -n1 "$RUNS" >&2
}

# ---------------------------------------------------------------- runs
log "machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
start_mock
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if want base; then

# (1) direct
SERVER_PID=$MOCK_PID
check_reply "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$BODY_JSON" chat.completion
log "direct: json, sse"
run_wrk direct json "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$BODY_JSON"
run_wrk direct sse "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$BODY_SSE"
run_oha direct json "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$BODY_JSON"

# (2) Pingora pass-through
start_pingora
check_reply "http://127.0.0.1:$PINGORA_PORT/v1/chat/completions" "$BODY_JSON" chat.completion
log "pingora pass-through: json, sse"
run_wrk pingora json "http://127.0.0.1:$PINGORA_PORT/v1/chat/completions" "$BODY_JSON"
run_wrk pingora sse "http://127.0.0.1:$PINGORA_PORT/v1/chat/completions" "$BODY_SSE"
run_oha pingora json "http://127.0.0.1:$PINGORA_PORT/v1/chat/completions" "$BODY_JSON"
stop_server

# (3) nginx pass-through
start_nginx
check_reply "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$BODY_JSON" chat.completion
log "nginx pass-through: json, sse"
run_wrk nginx json "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$BODY_JSON"
run_wrk nginx sse "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$BODY_SSE"
run_oha nginx json "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$BODY_JSON"
stop_server

# (4) codex-convert-proxy
start_convert
check_reply "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_JSON" '"object":"response"'
check_reply "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_SSE" 'response.created'
log "codex-convert-proxy: json, sse"
run_wrk convert json "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_JSON"
run_wrk convert sse "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_SSE"
run_oha convert json "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_JSON"
run_oha convert sse "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_SSE"
stop_server

# open streams against the slow upstream, each server fresh
log "$STREAMS open streams: pingora, nginx, convert"
start_pingora; hold_streams pingora /slow/v1/chat/completions "$PINGORA_PORT"; stop_server
start_nginx; hold_streams nginx /slow/v1/chat/completions "$NGINX_PORT"; stop_server
start_convert; hold_streams convert /slow/v1/responses "$CONVERT_PORT"; stop_server
fi

if want store; then
  # (5) the response store and the fixed cost per request: the tiny create stored (the
  # default) and not, Pingora passing the tiny Chat request, the Codex request stored.
  start_pingora
  log "store: pingora tiny"
  run_wrk pingora tiny "http://127.0.0.1:$PINGORA_PORT/v1/chat/completions" "$BODY_TINY_CHAT"
  stop_server
  start_convert
  check_reply "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_TINY_STORE" '"store":true'
  # Interleaved rounds (the report takes each mode's median): on a shared machine one
  # pair of runs can differ by 30% from noise alone.
  for round in $(seq 1 "$STORE_ROUNDS"); do
    log "store round $round/$STORE_ROUNDS: convert tiny, tiny stored, codex, codex stored (idle in between)"
    run_wrk convert tiny "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_TINY"
    settle
    run_wrk convert tiny-store "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_TINY_STORE"
    settle
    run_wrk convert json-nostore "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_JSON"
    settle
    run_wrk convert json-store "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$BODY_JSON_STORE"
    settle
  done
  log "store directory: $(du -sk "$WORK"/data 2>/dev/null | cut -f1) KiB"
  stop_server
fi

if want growth; then
  # (7) how the cost of a turn grows with its history: over HTTP the whole history each
  # request; over a WebSocket a continuation on a chain holding that history (8 sessions,
  # 100 continuations each, all at once).
  for h in 1024 10240 102400 1048576; do
    history_body "$h" "$WORK/history-$h.json"
    log "growth: $h bytes of history, HTTP then WebSocket"
    start_convert
    CONNS=8 DURATION=4 run_wrk convert "growth-http-$h" "http://127.0.0.1:$CONVERT_PORT/v1/responses" "$WORK/history-$h.json"
    stop_server
    start_convert; hold_sessions convert "$h" 8 100 growth; stop_server
  done
fi

if want ws; then
  # (6) idle WebSocket sessions, each server fresh: memory per session against history,
  # then against the number of sessions.
  log "websocket sessions: 500 x 1 KiB, 500 x 100 KiB, $WS_SESSIONS x 1 KiB"
  start_convert; hold_sessions convert 1024 500; stop_server
  start_convert; hold_sessions convert 102400 500; stop_server
  start_convert; hold_sessions convert 1024 "$WS_SESSIONS"; stop_server
fi

# ---------------------------------------------------------------- report
python3 bench/report.py --runs "$RUNS" --out "$OUT"
log "done: $OUT/summary.md, $OUT/loadtest.svg"
