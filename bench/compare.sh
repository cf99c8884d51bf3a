#!/usr/bin/env bash
# S2 against Switchboard and the two reference relays of issue #6, one after
# the other in the same run, each on a fresh Postgres database: the ceiling
# (bench/ceiling, the smallest Rust relay with our wire format and batched
# durable inserts) and the typical stack (bench/node-relay, Node + ws + pg,
# one awaited insert per message). Prints, per offered rate, throughput,
# customer → agent p50/p99, server + Postgres CPU µs per durable message and
# the server's RSS per chat, then the ratios ours/ceiling and ours/node.
#
#   bench/compare.sh [S2 flags…]
#   bench/compare.sh --agents 100 --rates 1000,2000,4000 --step-secs 10
#
# Environment: as bench/run.sh (BENCH_PROFILE, BENCH_PORT, …);
# COMPARE_SERVERS (default "switchboard ceiling node"). The Node relay's
# dependencies are installed with `npm ci` from its lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

servers="${COMPARE_SERVERS:-switchboard ceiling node}"
if [[ " $servers " == *" node "* ]]; then
  (cd bench/node-relay && npm ci --no-audit --no-fund --silent)
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
failed=0
for server in $servers; do
  echo "=== $server: bench/run.sh s2 $* (load $(cut -d' ' -f1-3 /proc/loadavg))"
  if ! BENCH_SERVER="$server" bash bench/run.sh s2 "$@" 2>&1 | tee "$out/$server.log"; then
    echo "=== $server: FAILED" >&2
    failed=1
  fi
done

python3 - "$out" $servers <<'PY'
import re, sys
out, servers = sys.argv[1], sys.argv[2:]
step_re = re.compile(
    r"S2 step \d+/\d+ offered_rate=(\d+)/s .*?\((\d+)/s\) skipped=(\d+) "
    r"\| to_agent (?:n=\d+ p50=([\d.]+)ms p99=([\d.]+)ms|n=0).*?"
    r"cpu_per_msg=(?:(\d+)us|\?).*? load ([\d.]+)")
mem_re = re.compile(r"rss_per_customer_kb=([\d.]+)")
runs = {}
for s in servers:
    steps, mem, verified = {}, None, False
    for line in open(f"{out}/{s}.log", errors="replace"):
        m = step_re.search(line)
        if m:
            rate, tput, skipped, p50, p99, cpu, load = m.groups()
            steps[int(rate)] = dict(tput=int(tput), skipped=int(skipped),
                                    p50=float(p50) if p50 else None,
                                    p99=float(p99) if p99 else None,
                                    cpu=int(cpu) if cpu else None, load=load)
        m = mem_re.search(line)
        if m:
            mem = float(m.group(1))
        verified |= "VERIFY PASSED" in line
    runs[s] = dict(steps=steps, mem=mem, verified=verified)

def fmt(v, spec):
    return "-" if v is None else format(v, spec)

rates = sorted({r for run in runs.values() for r in run["steps"]})
print()
print("COMPARE S2 (durable msg/s = customer + agent messages acknowledged after commit)")
print(f"{'offered/s':>9} {'server':<12} {'durable/s':>9} {'p50 ms':>7} {'p99 ms':>8} "
      f"{'µs/msg':>7} {'skipped':>7} {'load':>5}")
for rate in rates:
    for s in servers:
        st = runs[s]["steps"].get(rate)
        if st is None:
            print(f"{rate:>9} {s:<12} (no figures)")
            continue
        print(f"{rate:>9} {s:<12} {st['tput']:>9} {fmt(st['p50'], '.2f'):>7} "
              f"{fmt(st['p99'], '.2f'):>8} {fmt(st['cpu'], 'd'):>7} {st['skipped']:>7} "
              f"{st['load']:>5}")

def best(run):
    """Highest durable msg/s of a step with p99 < 50 ms and nothing skipped."""
    ok = [st["tput"] for st in run["steps"].values()
          if st["p99"] is not None and st["p99"] < 50 and st["skipped"] == 0]
    return max(ok) if ok else None

def cpu_at_top(run):
    top = max(run["steps"], default=None)
    return run["steps"][top]["cpu"] if top is not None else None

print()
print(f"{'server':<12} {'best durable/s (p99<50ms)':>26} {'µs/msg at top rate':>19} "
      f"{'RSS KiB/chat':>13} {'verified':>9}")
for s in servers:
    r = runs[s]
    print(f"{s:<12} {fmt(best(r), 'd'):>26} {fmt(cpu_at_top(r), 'd'):>19} "
          f"{fmt(r['mem'], '.1f'):>13} {'yes' if r['verified'] else 'NO':>9}")

def ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{a / b:.2f}"

if "switchboard" in runs:
    ours = runs["switchboard"]
    for ref in [s for s in servers if s != "switchboard"]:
        r = runs[ref]
        print(f"RATIO ours/{ref}: throughput {ratio(best(ours), best(r))}, "
              f"cpu_per_msg {ratio(cpu_at_top(ours), cpu_at_top(r))}, "
              f"rss_per_chat {ratio(ours['mem'], r['mem'])}")
PY
exit "$failed"
