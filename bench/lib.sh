# Shell helpers of the bench scripts (bench/loadtest.sh, bench/ab.sh): sourced, not run.

# Wait (bounded, 10 s) until a server listens on 127.0.0.1:port; fail when its pid died.
wait_port() { # port, pid
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "server on port $1 died" >&2; return 1; }
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2; return 1
}

# The CPU time of processes so far, in clock ticks (utime + stime from /proc/<pid>/stat).
cpu_ticks() { # pids... → utime+stime sum
  local t=0 p f
  for p in "$@"; do
    f="$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null)" || continue
    # after "(comm)": state=1 ... utime=12 stime=13
    set -- $f
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
