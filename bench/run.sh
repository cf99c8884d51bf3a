#!/usr/bin/env bash
# Runs one loadgen scenario against a freshly started server on a fresh
# database, then prints the whole run's server and Postgres CPU time, the
# server's RSS and the machine load.
#
#   bench/run.sh [--sqlite|--postgres] s1|s2|s3|s4 [loadgen scenario flags…]
#   bench/run.sh s2 --agents 25 --rates 100,200,400 --step-secs 10
#   BENCH_SERVER=ceiling bench/run.sh s2 --agents 25 --rates 100,200,400
#
# Environment: BENCH_SERVER=switchboard (default), ceiling (bench/ceiling,
# the smallest Rust relay with our wire format) or node (bench/node-relay,
# Node + ws + pg; needs `npm ci` there); the two relays run S2 on Postgres
# only, with `loadgen --mode relay`. BENCH_PROFILE=release (default) or dev
# (reuse the debug build, as CI does); BENCH_PORT (default 18080); BENCH_SOURCES (default
# 127.0.0.1-127.0.0.4); BENCH_PG (admin URL, default
# postgres://postgres@127.0.0.1:5432/postgres); BENCH_MMAP_THRESHOLD (glibc's
# MALLOC_MMAP_THRESHOLD_ for the server, default 131072, `off`: glibc's own); BENCH_KEEP_DB=1 keeps the
# database; BENCH_SWITCHBOARD_BIN runs another build of the server (A/B);
# BENCH_NO_BUILD=1 skips the cargo build;
# BENCH_PERF=file records a perf profile of the server; LOADGEN_ARGS are extra global loadgen flags (e.g. --threads 2).
set -euo pipefail
cd "$(dirname "$0")/.."

backend=postgres
case "${1:-}" in
  --sqlite) backend=sqlite; shift ;;
  --postgres) shift ;;
esac
scenario="${1:?usage: bench/run.sh [--sqlite|--postgres] s1|s2|s3|s4 [flags…]}"
shift

server="${BENCH_SERVER:-switchboard}"
case "$server" in
  switchboard) mode=switchboard ;;
  ceiling | node)
    mode=relay
    if [ "$backend" != postgres ] || [ "$scenario" != s2 ]; then
      echo "bench/run.sh: BENCH_SERVER=$server runs S2 on Postgres only" >&2
      exit 2
    fi
    ;;
  *) echo "bench/run.sh: BENCH_SERVER must be switchboard, ceiling or node" >&2; exit 2 ;;
esac
profile="${BENCH_PROFILE:-release}"
port="${BENCH_PORT:-18080}"
sources="${BENCH_SOURCES:-127.0.0.1-127.0.0.4}"
pg_admin="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"

target_dir="${CARGO_TARGET_DIR:-target}"
build=(cargo build --quiet --bin switchboard --bin ceiling-relay --bin loadgen)
if [ "$profile" = release ]; then
  build+=(--release)
  bin="$target_dir/release"
else
  bin="$target_dir/debug"
fi
# BENCH_NO_BUILD=1 runs the binaries as they are (e.g. while a build runs).
if [ -z "${BENCH_NO_BUILD:-}" ]; then "${build[@]}"; fi
if [ "$server" = node ] && [ ! -d bench/node-relay/node_modules ]; then
  (cd bench/node-relay && npm ci --no-audit --no-fund --silent)
fi

# Thousands of sockets on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

work="$(mktemp -d)"
name="sb_bench_$(date +%s)_$$"
case "$backend" in
  postgres)
    psql "$pg_admin" -q -c "create database $name"
    url="${pg_admin%/*}/$name"
    ;;
  sqlite) url="sqlite:$work/bench.db" ;;
esac

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$backend" = postgres ] && [ -z "${BENCH_KEEP_DB:-}" ]; then
    psql "$pg_admin" -q -c "drop database if exists $name" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# A timeout or Ctrl-C still stops the server and drops the database.
trap 'exit 143' TERM INT

# The servers' glibc serves blocks over 128 KiB (e.g. argon2's 19 MiB per
# login) with mmap and returns them on free, instead of keeping them in the
# thread arenas. BENCH_MMAP_THRESHOLD=off leaves glibc's default (for A/B).
mmap_threshold="${BENCH_MMAP_THRESHOLD:-131072}"
malloc_env=()
if [ "$mmap_threshold" != off ]; then malloc_env=("MALLOC_MMAP_THRESHOLD_=$mmap_threshold"); fi
case "$server" in
  switchboard)
    # The load generator opens thousands of sockets from a few loopback
    # addresses and each sends frames faster than one person would: raise the
    # per-address abuse limits of config/default.toml [limits] for the run.
    env "${malloc_env[@]}" SWITCHBOARD__DATABASE__URL="$url" SWITCHBOARD__SERVER__BIND="127.0.0.1:$port" \
      SWITCHBOARD__LIMITS__CONNECTIONS_PER_IP=100000 SWITCHBOARD__LIMITS__CONNECTIONS_TOTAL=200000 \
      SWITCHBOARD__LIMITS__IP_FRAMES_BURST=1000000 SWITCHBOARD__LIMITS__IP_FRAMES_PER_SEC=1000000 \
      SWITCHBOARD__LIMITS__FRAMES_BURST=10000 SWITCHBOARD__LIMITS__FRAMES_PER_SEC=10000 \
      RUST_LOG="${RUST_LOG:-switchboard=warn}" \
      "${BENCH_SWITCHBOARD_BIN:-$bin/switchboard}" --root . serve >"$work/server.log" 2>&1 &
    ;;
  ceiling)
    env "${malloc_env[@]}" RELAY_DATABASE_URL="$url" RELAY_BIND="127.0.0.1:$port" \
      "$bin/ceiling-relay" >"$work/server.log" 2>&1 &
    ;;
  node)
    env "${malloc_env[@]}" RELAY_DATABASE_URL="$url" RELAY_BIND="127.0.0.1:$port" \
      node bench/node-relay/server.js >"$work/server.log" 2>&1 &
    ;;
esac
server_pid=$!

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null

# utime+stime in clock ticks of one pid, or of all postgres processes.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local sum=0 pid
  for pid in $(pgrep -u postgres postgres || true); do sum=$((sum + $(ticks "$pid"))); done
  echo "$sum"
}
hz="$(getconf CLK_TCK)"
secs() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }'; }

perf_pid=""
if [ -n "${BENCH_PERF:-}" ]; then
  # A flat profile of the server for the run (release builds keep symbols).
  perf record -q -F 499 -D "${BENCH_PERF_DELAY_MS:-0}" -p "$server_pid" -o "$BENCH_PERF" >/dev/null 2>&1 &
  perf_pid=$!
fi

server_before="$(ticks "$server_pid")"
pg_before="$(pg_ticks)"
started="$(date +%s.%N)"
set +e
# shellcheck disable=SC2086
"$bin/loadgen" --target "http://127.0.0.1:$port" --db-url "$url" --sources "$sources" \
  --server-pid "$server_pid" --mode "$mode" ${LOADGEN_ARGS:-} "$scenario" "$@"
rc=$?
set -e
elapsed="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
server_after="$(ticks "$server_pid")"
pg_after="$(pg_ticks)"
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; fi
rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || echo '?')"

if grep -qiE 'panicked|error' "$work/server.log"; then
  echo "server log (errors):" >&2
  grep -iE 'panicked|error' "$work/server.log" | head -20 >&2
fi
echo "SUMMARY server=$server scenario=$scenario backend=$backend profile=$profile rc=$rc wall_s=$elapsed" \
  "server_cpu_s=$(secs "$server_before" "$server_after")" \
  "postgres_cpu_s_all_databases=$(secs "$pg_before" "$pg_after")" \
  "server_rss_kb=$rss cores=$(nproc) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
exit "$rc"
