#!/usr/bin/env bash
# mesos-dns-sidecar against dnsmasq and unbound, in one run on this machine, with the same
# names, the same upstream and the same dnsperf query files:
#
#   (a) cluster   names of a synthetic cluster (TASKS tasks): our snapshot against the peers
#                 serving the same records as local data
#   (b) hits      forwarded names, all cache hits (caches warmed first)
#   (c) mix       forwarded names, 90% of queries on 1000 hot names and 10% never seen before,
#                 so misses go to a local upstream
#
# plus the ceiling: a UDP responder sending one precomputed answer, the limit of the socket API.
# Every server runs alone on CPU 1, dnsperf (and the shared upstream) on CPU 0. Prints a table
# of QPS, latency percentiles, server CPU, server CPU time per answered query, peak RSS, our
# ratio to each peer, and resperf's maximum throughput on the cache-hit mix. On a machine shared
# with other work, QPS moves with the CPU share the server gets; CPU time per query moves much
# less, so it is the figure to compare builds by there.
#
#   benches/peers.sh        # DURATION=10 seconds per run, ROUNDS=3, TASKS=1000
#   SCENARIOS=cluster SERVERS="mesos-dns-sidecar unbound" RESPERF=0 benches/peers.sh  # a subset
#   BASE=/tmp/base/mesos-dns-sidecar benches/peers.sh  # also an older build, as server "base"
#   RATES="30000 60000" benches/peers.sh  # the fixed-rate table instead (see below)
#
# With BASE (a mesos-dns-sidecar binary built elsewhere, e.g. from the commit before a change),
# that build runs as one more server with the same config and port, interleaved with the others
# in every round, and the table gets a "vs base" column: before and after in one run.
#
# Fixed rates (RATES set): instead of the table above, CPU time per answered query at each of
# the given query rates (`dnsperf -Q RATE`, DURATION seconds a run), for the scenarios cluster
# and hits (FIXED_SCENARIOS), and the servers mesos-dns-sidecar, unbound and the ceiling (plus
# base with BASE=), interleaved: every round runs each scenario, rate and server once. The
# table gives per scenario, rate and server the answered QPS (a server that answers less than
# 97% of the rate is marked as not sustaining it, since its CPU per query then says little),
# the CPU us per answered query (median round, and range), and for us (and base) the
# efficiency against the ceiling (the ceiling's CPU per query divided by ours, per round;
# median and range; 1.00 is the floor of the socket API) and our CPU per query divided by
# unbound's (below 1 is cheaper). At a fixed rate the cost per query includes each wake-up's
# system calls, which a saturating run amortises over large batches.
#
# Parts of the cluster's names, as fixed-rate scenarios of their own, tell where our cost per
# query comes from (how much of the snapshot each query touches): cluster-one (one name asked
# over and over), cluster-ten (ten address names), cluster-a (every address name) and
# cluster-srv (every SRV name), e.g. FIXED_SCENARIOS="cluster-one cluster-ten cluster-srv".
#
#   RATES="30000 60000" ROUNDS=5 DURATION=8 BASE=/tmp/base/mesos-dns-sidecar benches/peers.sh
#
# Needs: dnsperf (with resperf), dnsmasq, unbound, python3 (apt-get install dnsperf dnsmasq
# unbound python3). Everything listens on 127.0.0.1 only.
set -euo pipefail
# The date and this machine's cores and CPU model, for the tables' headers.
machine() { echo "$(date -u +%F), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))"; }
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
TASKS=${TASKS:-1000}
SCENARIOS=${SCENARIOS:-cluster hits mix}
SERVERS=${SERVERS:-mesos-dns-sidecar dnsmasq unbound}
RESPERF=${RESPERF:-1}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-}
RATES=${RATES:-}
FIXED_SCENARIOS=${FIXED_SCENARIOS:-cluster hits}
FIXED_SERVERS=${FIXED_SERVERS:-mesos-dns-sidecar unbound ceiling}
if [ -n "$BASE" ]; then
  [ -x "$BASE" ] || { echo "BASE=$BASE is not an executable" >&2; exit 1; }
  SERVERS="$SERVERS base"
  FIXED_SERVERS="$FIXED_SERVERS base"
fi
UP_PORT=5400 OURS_PORT=5401 DNSMASQ_PORT=5402 UNBOUND_PORT=5403 CEILING_PORT=5404 HTTP_PORT=5405
CACHE_ENTRIES=10000

for tool in dnsperf resperf dnsmasq unbound python3 taskset curl ss; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dnsperf dnsmasq unbound python3 curl)" >&2; exit 1; }
done
for port in $UP_PORT $OURS_PORT $DNSMASQ_PORT $UNBOUND_PORT $CEILING_PORT $HTTP_PORT; do
  # Another run (or anything else) on these ports would answer in the servers' place.
  if ss -Hlntu "sport = :$port" | grep -q .; then
    echo "port $port is in use: is another peers.sh running?" >&2
    exit 1
  fi
done
cargo build --release --quiet --bins --examples
bin=target/release/mesos-dns-sidecar
work=$(mktemp -d)
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$work"' EXIT

wait_for() { # port: until something answers DNS on it
  for _ in $(seq 1 100); do
    dig +time=1 +tries=1 @127.0.0.1 -p "$1" web.marathon.mesos >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2; exit 1
}

# The cluster: a synthetic state, and the records we serve for it (our /v1/axfr), rendered as
# local data for the peers and as a query file.
target/release/examples/synthetic_state "$TASKS" > "$work/state.json"
cat > "$work/ours.json" <<JSON
{"resolvers": ["127.0.0.1:$UP_PORT"], "resolvConf": "/dev/null", "savedResolvConf": "/nonexistent",
 "cacheMaxEntries": $CACHE_ENTRIES, "httpon": true, "httpport": $HTTP_PORT}
JSON
ours_cmd=("$bin" --config "$work/ours.json" --state-file "$work/state.json" --listener 127.0.0.1 --port "$OURS_PORT" --log-level error)
"${ours_cmd[@]}" & pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$HTTP_PORT/v1/axfr" > "$work/axfr.json"
stop_all

python3 - "$work" <<'PY'
import json, random, sys
work = sys.argv[1]
axfr = json.load(open(f"{work}/axfr.json"))
ttl, rr = axfr["TTL"], axfr["Records"]
domain = axfr["Domain"].strip(".")
dnsmasq, unbound, queries = [], [], []
for name, ips in sorted(rr["As"].items()):
    queries.append(f"{name} A")
    for ip in ips:
        dnsmasq.append(f"host-record={name.rstrip('.')},{ip}")
        unbound.append(f'local-data: "{name} {ttl} IN A {ip}"')
for name, ips in sorted(rr["AAAAs"].items()):
    queries.append(f"{name} AAAA")
    for ip in ips:
        dnsmasq.append(f"host-record={name.rstrip('.')},{ip}")
        unbound.append(f'local-data: "{name} {ttl} IN AAAA {ip}"')
for name, targets in sorted(rr["SRVs"].items()):
    queries.append(f"{name} SRV")
    for t in targets:
        host, port = t.rsplit(":", 1)
        dnsmasq.append(f"srv-host={name.rstrip('.')},{host.rstrip('.')},{port},0,1")
        unbound.append(f'local-data: "{name} {ttl} IN SRV 0 1 {port} {host}"')
random.Random(1).shuffle(queries)
open(f"{work}/dnsmasq-local.conf", "w").write(
    f"local=/{domain}/\nlocal-ttl={ttl}\n" + "\n".join(dnsmasq) + "\n")
open(f"{work}/unbound-local.conf", "w").write(
    f'local-zone: "{domain}." static\n' + "\n".join(unbound) + "\n")
open(f"{work}/q.cluster", "w").write("\n".join(queries) + "\n")
addresses = [q for q in queries if q.endswith(" A")]
services = [q for q in queries if q.endswith(" SRV")]
for part, lines in [("one", addresses[:1] * 100), ("ten", addresses[:10]),
                    ("a", addresses), ("srv", services)]:
    open(f"{work}/q.cluster-{part}", "w").write("\n".join(lines) + "\n")
hot = [f"name{i}.bench.test A" for i in range(1000)]
open(f"{work}/q.hits", "w").write("\n".join(hot) + "\n")
# Enough lines that dnsperf never wraps around to names it has already asked.
with open(f"{work}/q.mix", "w") as f:
    for i in range(2_000_000):
        f.write(f"miss{i}.bench.test A\n" if i % 10 == 0 else hot[i % 1000] + "\n")
print(f"cluster: {len(queries)} names ({len(dnsmasq)} records)", file=sys.stderr)
PY

# Peer configs: forwarding only for (b) and (c); plus the cluster as local data for (a) only, as
# dnsmasq slows down with thousands of srv-host lines even for names it forwards.
for kind in cluster fwd; do
  cat > "$work/dnsmasq-$kind.conf" <<CONF
keep-in-foreground
no-resolv
no-hosts
pid-file=
user=root
listen-address=127.0.0.1
bind-interfaces
port=$DNSMASQ_PORT
server=127.0.0.1#$UP_PORT
cache-size=$CACHE_ENTRIES
CONF
  cat > "$work/unbound-$kind.conf" <<CONF
server:
  interface: 127.0.0.1
  port: $UNBOUND_PORT
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: ""
  logfile: ""
  use-syslog: no
  verbosity: 0
  num-threads: 1
  so-rcvbuf: 4m
  so-sndbuf: 4m
  msg-cache-size: 64m
  rrset-cache-size: 64m
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  qname-minimisation: no
  # unbound answers names under test. (RFC 6761) NXDOMAIN itself unless told not to.
  local-zone: "test." nodefault
CONF
  if [ "$kind" = cluster ]; then
    echo "conf-file=$work/dnsmasq-local.conf" >> "$work/dnsmasq-$kind.conf"
    echo "  include: \"$work/unbound-local.conf\"" >> "$work/unbound-$kind.conf"
  fi
  cat >> "$work/unbound-$kind.conf" <<CONF
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$UP_PORT
CONF
  unbound-checkconf "$work/unbound-$kind.conf" >/dev/null
done

# The shared upstream: answers every name under bench.test with one address, TTL 3600.
start_upstream() {
  taskset -c 0 dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --pid-file= --user=root \
    --listen-address=127.0.0.1 --bind-interfaces --port=$UP_PORT \
    --address=/bench.test/192.0.2.1 --local-ttl=3600 --cache-size=0 2>/dev/null & pids+=($!)
}

start_server() { # name scenario -> sets server_pid and server_port
  local kind=fwd
  case $2 in cluster*) kind=cluster ;; esac
  case $1 in
    mesos-dns-sidecar) taskset -c 1 "${ours_cmd[@]}" & server_port=$OURS_PORT ;;
    base) taskset -c 1 "$BASE" "${ours_cmd[@]:1}" & server_port=$OURS_PORT ;;
    dnsmasq) taskset -c 1 dnsmasq --conf-file="$work/dnsmasq-$kind.conf" 2>/dev/null & server_port=$DNSMASQ_PORT ;;
    unbound) taskset -c 1 unbound -d -c "$work/unbound-$kind.conf" 2>/dev/null & server_port=$UNBOUND_PORT ;;
    ceiling) taskset -c 1 target/release/examples/ceiling_responder 127.0.0.1:$CEILING_PORT & server_port=$CEILING_PORT ;;
  esac
  server_pid=$!
  pids+=("$server_pid")
  wait_for "$server_port"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# Every query has a real answer; a server that fails fast (its upstream gone, say) would
# otherwise show a fine QPS made of SERVFAILs.
check_answers() { # what dnsperf-output
  local noerror
  noerror=$(awk '/Response codes/ {for (i = 1; i < NF; i++) if ($i == "NOERROR") print $(i + 2)}' <<<"$2" | tr -d '(%)')
  if ! awk -v p="${noerror:-0}" 'BEGIN {exit !(p >= 99.9)}'; then
    echo "$1: only ${noerror:-0}% NOERROR answers; not a valid run:" >&2
    grep -E "Response codes|Queries (sent|completed|lost)" <<<"$2" >&2
    exit 1
  fi
}

results=$work/results
: > "$results"
measure() { # scenario server queryfile
  local scenario=$1 server=$2 queries=$3
  stop_all
  start_upstream
  start_server "$server" "$scenario"
  # Warm up: every hot name once (fills caches), then steady load.
  local warm=$queries
  [ "$queries" = mix ] && warm=hits
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$server_port" -d "$work/q.$warm" -n 1 -q 100 >/dev/null 2>&1 || true
  local t0 c0 t1 c1 out
  t0=$(date +%s.%N); c0=$(cpu_ticks "$server_pid")
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$server_port" -d "$work/q.$queries" -l "$DURATION" -c 4 -q 256 2>&1)
  t1=$(date +%s.%N); c1=$(cpu_ticks "$server_pid")
  local qps lost completed
  qps=$(awk '/Queries per second/ {printf "%.0f", $4}' <<<"$out")
  lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
  completed=$(awk '/Queries completed/ {print $3}' <<<"$out")
  check_answers "$server on $scenario" "$out"
  # Latency percentiles from a verbose run at a fixed, moderate rate that every server sustains.
  local pcts
  pcts=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$server_port" -d "$work/q.$queries" -l 3 -Q 20000 -v 2>/dev/null \
    | awk '$1 == ">" {print $NF}' | sort -g \
    | awk '{v[NR]=$1} END {if (NR) printf "%.0f %.0f", v[int(NR*0.5)]*1e6, v[int(NR*0.99)]*1e6; else print "- -"}')
  local cpu us_per_query
  cpu=$(awk -v c="$((c1 - c0))" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", 100 * c / hz / (t1 - t0)}')
  us_per_query=$(awk -v c="$((c1 - c0))" -v n="${completed:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {if (n > 0) printf "%.2f", 1e6 * c / hz / n; else print "-"}')
  echo "$scenario $server $qps $pcts $cpu $(peak_rss_mib "$server_pid") $lost $us_per_query" >> "$results"
}

resperf_max() { # server: resperf's maximum throughput on the cache-hit mix
  stop_all
  start_upstream
  start_server "$1" hits
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$server_port" -d "$work/q.hits" -n 1 -q 100 >/dev/null 2>&1 || true
  # Four client sockets like dnsperf's -c 4; no early end when resperf's own sender falls behind
  # (on one core it does, near 140k QPS), so the ramp runs its course.
  local out max loss
  out=$(cd "$work" && taskset -c 0 resperf -s 127.0.0.1 -p "$server_port" -d "$work/q.hits" -R \
    -m 300000 -r "$DURATION" -F 0 -C 4 -t 2 -P "$work/resperf.plot" 2>/dev/null)
  max=$(awk '/Maximum throughput/ {printf "%.0f", $3}' <<<"$out")
  loss=$(awk '/Lost at that point/ {print $5}' <<<"$out")
  echo "$1 $max $loss" >> "$work/resperf"
}

measure_rate() { # scenario server rate round: CPU per answered query at a fixed query rate
  local scenario=$1 server=$2 rate=$3 round=$4
  stop_all
  start_upstream
  start_server "$server" "$scenario"
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$server_port" -d "$work/q.$scenario" -n 1 -q 100 >/dev/null 2>&1 || true
  local t0 c0 t1 c1 out qps completed lost
  t0=$(date +%s.%N); c0=$(cpu_ticks "$server_pid")
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$server_port" -d "$work/q.$scenario" -l "$DURATION" -c 4 -q 256 -Q "$rate" 2>&1)
  t1=$(date +%s.%N); c1=$(cpu_ticks "$server_pid")
  check_answers "$server on $scenario at $rate QPS" "$out"
  qps=$(awk '/Queries per second/ {printf "%.0f", $4}' <<<"$out")
  completed=$(awk '/Queries completed/ {print $3}' <<<"$out")
  lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
  echo "$scenario $rate $server $round ${qps:-0} $(awk -v c="$((c1 - c0))" -v n="${completed:-0}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {if (n > 0) printf "%.3f", 1e6 * c / hz / n; else print "-"}') ${lost:-0}" >> "$work/fixed"
}

if [ -n "$RATES" ]; then
  : > "$work/fixed"
  # Rounds interleave scenarios, rates and servers, so a busy minute hits all alike.
  for round in $(seq 1 "$ROUNDS"); do
    for scenario in $FIXED_SCENARIOS; do
      for rate in $RATES; do
        for server in $FIXED_SERVERS; do
          measure_rate "$scenario" "$server" "$rate" "$round"
        done
      done
    done
  done
  stop_all
  echo
  echo "peers at fixed rates: $(machine), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "${DURATION}s runs, $ROUNDS interleaved rounds, $TASKS-task cluster, unbound $(unbound -V | awk 'NR==1 {print $2}'), dnsperf -c 4 -q 256 -Q RATE on CPU 0, servers on CPU 1"
  echo
  python3 - "$work/fixed" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    scenario, rate, server, rnd, qps, us, lost = line.split()
    runs.setdefault((scenario, int(rate)), {}).setdefault(server, {})[int(rnd)] = (
        float(qps), None if us == "-" else float(us), int(lost))
def med(v):
    v = sorted(v)
    return v[len(v) // 2] if v else None
def spread(v, fmt):
    v = sorted(v)
    if not v:
        return "-"
    return f"{fmt(med(v))}" + (f" ({fmt(v[0])}-{fmt(v[-1])})" if len(v) > 1 else "")
def ratio(a, b, flip):
    # Per round, a's CPU per query against b's (flip: b over a); median and range.
    r = [(b[k][1] / a[k][1]) if flip else (a[k][1] / b[k][1])
         for k in a if k in b and a[k][1] and b[k][1]]
    return spread(r, lambda x: f"{x:.2f}")
print("| scenario | QPS asked | server | answered QPS | CPU us/query | vs ceiling (efficiency) | CPU/query vs unbound |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for (scenario, rate), servers in runs.items():
    for server, rounds in servers.items():
        answered = med(r[0] for r in rounds.values())
        shown = f"{answered:.0f}"
        if answered < 0.97 * rate:
            shown += f" NOT SUSTAINED ({100 * answered / rate:.0f}%)"
        lost = sum(r[2] for r in rounds.values())
        if lost:
            shown += f", {lost} lost"
        us = spread([r[1] for r in rounds.values() if r[1] is not None], lambda x: f"{x:.2f}")
        ours = server in ("mesos-dns-sidecar", "base")
        eff = ratio(rounds, servers["ceiling"], True) if ours and "ceiling" in servers else ""
        unb = ratio(rounds, servers["unbound"], False) if ours and "unbound" in servers else ""
        print(f"| {scenario} | {rate} | {server} | {shown} | {us} | {eff} | {unb} |")
    if "base" in servers and "mesos-dns-sidecar" in servers:
        print(f"| {scenario} | {rate} | now vs base | | {ratio(servers['mesos-dns-sidecar'], servers['base'], False)} | | |")
print("\nvs ceiling: the ceiling's CPU per query over ours, per round (median, range); 1.00 is the floor."
      "\nvs unbound and vs base: our CPU per query over theirs, per round; below 1 is cheaper.")
PY
  exit 0
fi

# Rounds interleave the servers, so a slow minute on the machine hits all of them alike; the
# table shows each server's median round.
for _ in $(seq 1 "$ROUNDS"); do
  for scenario in $SCENARIOS; do
    for server in $SERVERS; do
      measure "$scenario" "$server" "$scenario"
    done
  done
  measure ceiling ceiling cluster
done
: > "$work/resperf"
if [ "$RESPERF" = 1 ]; then
  for server in $SERVERS; do resperf_max "$server"; done
fi
stop_all

echo
echo "peers: $(machine), ${DURATION}s runs, median of $ROUNDS rounds, $TASKS-task cluster"
echo "dnsmasq $(dnsmasq --version | awk 'NR==1 {print $3}'), unbound $(unbound -V | awk 'NR==1 {print $2}'), dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')"
echo
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault((f[0], f[1]), []).append(f)
median = {k: sorted(v, key=lambda f: float(f[2] or 0))[len(v) // 2] for k, v in rows.items()}
qps = {k: float(f[2] or 0) for k, f in median.items()}
base = any(server == "base" for _, server in median)
# CPU time per query: the median round of its own, and (with a base build) the median of the
# per-round ratios, since rounds interleave the servers and a busy minute hits both alike.
cpu_us = {k: sorted(float(r[8]) for r in v if r[8] != "-") for k, v in rows.items()}
cpu_med = {k: v[len(v) // 2] if v else None for k, v in cpu_us.items()}
def cpu_ratio(scenario):
    ours, old = rows.get((scenario, "mesos-dns-sidecar"), []), rows.get((scenario, "base"), [])
    r = sorted(float(a[8]) / float(b[8]) for a, b in zip(ours, old) if "-" not in (a[8], b[8]))
    return f"{r[len(r) // 2]:.2f}x ({r[0]:.2f}-{r[-1]:.2f})" if r else ""
print("| scenario | server | QPS | p50 us | p99 us | CPU | CPU us/query | peak RSS MiB | lost | vs dnsmasq | vs unbound |"
      + (" vs base | CPU/query vs base |" if base else ""))
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if base else ""))
for (scenario, server), f in median.items():
    ratio = lambda peer: (f"{qps[(scenario, server)] / qps[(scenario, peer)]:.2f}x"
                          if server != peer and qps.get((scenario, peer)) else "")
    spread = sorted(float(r[2] or 0) for r in rows[(scenario, server)])
    shown = f"{f[2]}" + (f" ({spread[0]:.0f}-{spread[-1]:.0f})" if len(spread) > 1 else "")
    ours = server == "mesos-dns-sidecar"
    us = cpu_med[(scenario, server)]
    print(f"| {scenario} | {server} | {shown} | {f[3]} | {f[4]} | {f[5]}% | {us if us is not None else '-'} | {f[6]} | {f[7]} "
          f"| {ratio('dnsmasq')} | {ratio('unbound')} |"
          + (f" {ratio('base') if ours else ''} | {cpu_ratio(scenario) if ours else ''} |" if base else ""))
if base:
    print("\nCPU/query vs base: our CPU time per query divided by the base build's, per round;"
          " the median round (range). Below 1 is cheaper.")
c, o = qps.get(("ceiling", "ceiling")), qps.get(("cluster", "mesos-dns-sidecar"))
if c and o:
    print(f"\nceiling (one precomputed answer): {c:.0f} QPS; our cluster QPS is {o / c:.2f} of it")
PY
echo
awk '
  { m[$1] = $2; l[$1] = $3 }
  END {
    printf "resperf, cache hits, maximum throughput (loss at that point): "
    for (s in m) printf "%s %s QPS (%s); ", s, m[s], l[s]
    if (m["dnsmasq"] > 0 && m["unbound"] > 0)
      printf "ours %.2fx dnsmasq, %.2fx unbound", m["mesos-dns-sidecar"] / m["dnsmasq"], m["mesos-dns-sidecar"] / m["unbound"]
    if (m["base"] > 0)
      printf ", %.2fx base", m["mesos-dns-sidecar"] / m["base"]
    printf "\n"
  }' "$work/resperf"
