#!/usr/bin/env bash
# Forwarding benchmark, cache hits: mesos-dns-sidecar against dnsmasq with the same cache setup,
# the same upstream and the same queries, in one run on this machine.
#
#   benches/forward_cache.sh            # DURATION=10 seconds per measurement by default
#
# Needs dnsperf and dnsmasq (apt-get install dnsperf dnsmasq). Everything listens on
# 127.0.0.1 only. Each server is pinned to CPU 1 and dnsperf to CPU 0, so they don't compete.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
NAMES=${NAMES:-1000}
UP_PORT=5400 OURS_PORT=5401 DNSMASQ_PORT=5402

for tool in dnsperf dnsmasq taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dnsperf dnsmasq)" >&2; exit 1; }
done
cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The shared upstream: answers every name under bench.test with one address, TTL 3600.
dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --pid-file= --user=root \
  --listen-address=127.0.0.1 --bind-interfaces --port=$UP_PORT \
  --address=/bench.test/192.0.2.1 --local-ttl=3600 --cache-size=0 2>/dev/null &
pids+=($!)

# The peer: dnsmasq forwarding to the upstream with a 10000-entry cache.
taskset -c 1 dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --pid-file= --user=root \
  --listen-address=127.0.0.1 --bind-interfaces --port=$DNSMASQ_PORT \
  --server=127.0.0.1#$UP_PORT --cache-size=10000 2>/dev/null &
dnsmasq_pid=$!
pids+=($dnsmasq_pid)

# Us: same upstream, default cache (100000 entries, 64 MiB), serving the demo cluster.
cat > "$work/config.json" <<JSON
{"resolvers": ["127.0.0.1:$UP_PORT"], "resolvConf": "/dev/null", "savedResolvConf": "/nonexistent"}
JSON
taskset -c 1 ./target/release/mesos-dns-sidecar --config "$work/config.json" --demo \
  --listener 127.0.0.1 --port $OURS_PORT --log-level error &
ours_pid=$!
pids+=($ours_pid)
sleep 1

for i in $(seq 1 "$NAMES"); do echo "name$i.bench.test A"; done > "$work/queries"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

measure() { # name port pid
  local name=$1 port=$2 pid=$3
  # Warm the cache: every name once, then a short run.
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -n 1 -q 50 >/dev/null 2>&1
  local t0 c0 out
  t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$DURATION" -c 4 -q 256 2>&1)
  local t1 c1
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  local qps lat lost
  qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
  lat=$(awk '/Average Latency/ {print $4}' <<<"$out")
  lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
  # Latency percentiles from a short verbose run at a fixed, moderate rate.
  local pcts
  pcts=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l 3 -Q 20000 -v 2>/dev/null \
    | awk '$1 == ">" && $2 == "NOERROR" {print $NF}' | sort -g \
    | awk '{v[NR]=$1} END {if (NR) printf "%.0f %.0f %.0f", v[int(NR*0.5)]*1e6, v[int(NR*0.99)]*1e6, v[int(NR*0.999)]*1e6; else print "- - -"}')
  local cpu
  cpu=$(awk -v c="$((c1 - c0))" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", 100 * c / hz / (t1 - t0)}')
  printf "%-18s %10s %10s %8s %8s %8s %6s%% %9s %s\n" "$name" "$qps" "$lat" $pcts "$cpu" "$(peak_rss_kib "$pid")" "$lost"
  echo "$qps" > "$work/qps.$name"
}

echo "forwarding, cache hits: $NAMES names, ${DURATION}s per run, $(nproc) cores, $(date -u +%F)"
printf "%-18s %10s %10s %8s %8s %8s %7s %9s %s\n" server qps avg_lat_s p50_us p99_us p999_us cpu rss_kib lost
measure mesos-dns-sidecar $OURS_PORT $ours_pid
measure dnsmasq $DNSMASQ_PORT $dnsmasq_pid
awk -v a="$(cat "$work/qps.mesos-dns-sidecar")" -v b="$(cat "$work/qps.dnsmasq")" \
  'BEGIN {printf "ratio mesos-dns-sidecar/dnsmasq QPS: %.2f\n", a / b}'
