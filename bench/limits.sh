#!/usr/bin/env bash
# What limits, cost tracking and the cache add: the same requests through the
# gateway to nginx with a key that has no limits, with a key that has every
# limit and a budget (embedded store, then Redis), and to a cached model. At one
# connection, also through a bare pass-through proxy (bench/upstream_clients.py:
# uvicorn, httptools, uvloop and the gateway's upstream pool, no gateway code):
# the floor any gateway in Python on this stack starts from.
#
#   bash bench/limits.sh            # DURATION=6s per run, ROUNDS=3 per row and store
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PY=${PYTHON:-$ROOT/.venv/bin/python}
DURATION=${DURATION:-6s}; [[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-1 16}
RESULTS=${RESULTS:-$HERE/results}
# On a machine of 2 or more cores the gateways get the last core to themselves and
# nginx, Redis and the load generators share the rest (PIN=0: no pinning). Unpinned,
# wrk and nginx take CPU from the gateway in proportion to the bytes they handle, so a
# stream (5 times a whole answer's bytes) would be slowed by its neighbours, not itself.
PIN=${PIN:-1}
CORES=$(nproc)
if [[ $PIN == 1 && $CORES -ge 2 ]] && command -v taskset >/dev/null; then
    ON_GATEWAY=(taskset -c $((CORES - 1))); ON_REST=(taskset -c 0-$((CORES - 2))); GATEWAY_CPU="cpu$((CORES - 1))"
else
    ON_GATEWAY=(); ON_REST=(); GATEWAY_CPU="cpu"
fi
for tool in nginx wrk redis-server curl; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found (apt-get install nginx wrk redis-server curl)" >&2; exit 1; }
done

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gateway-limits.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; kill -CONT "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ $rc -ne 0 ]] && tail -n 20 "$WORK"/*.log >&2 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

wait_http() { for _ in $(seq 150); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }

NGINX_PORT=$(free_port)
sed -e "s#__PORT__#$NGINX_PORT#g" -e "s#__PREFIX__#$WORK#g" "$HERE/nginx.conf.template" >"$WORK/nginx.conf"
"${ON_REST[@]}" nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/"

REDIS_PORT=$(free_port)
"${ON_REST[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)

# start_gateway NAME [REDIS_URL]: one gateway process on the bench config
start_gateway() {
    local port; port=$(free_port)
    BENCH_UPSTREAM=http://127.0.0.1:$NGINX_PORT BENCH_DATA_DIR=$WORK/data-$1 BENCH_REDIS_URL=${2:-} \
        "${ON_GATEWAY[@]}" "$PY" -m gateway serve --config "$HERE/gateway.bench.yaml" --port "$port" --log-level warning \
        >"$WORK/gateway-$1.log" 2>&1 &
    PIDS+=($!)
    GATEWAY_PID=$!
    GATEWAY=http://127.0.0.1:$port
    wait_http "$GATEWAY/healthz"
}

commands() {  # "sent,run": commands the gateway sent so far (scripts and the cache's GET/SET: the scripts
              # never call GET or SET), and all Redis ran (the scripts' own calls too)
    redis-cli -p "$REDIS_PORT" info commandstats | awk -F'[=,:]' '
        /^cmdstat_/ { all += $3 }
        /^cmdstat_(evalsha|eval|get|set|script\|load|client\|setname):/ { sent += $3 }
        END { printf "%d,%d", sent, all }'
}

# redis_cpu: the CPU seconds redis-server has used so far, user and system
redis_cpu() {
    redis-cli -p "$REDIS_PORT" info cpu | awk -F: '/^used_cpu_(user|sys):/ { t += $2 } END { printf "%.6f", t }'
}

# cpu_ticks STORE: the CPU time its gateway has used so far, user and system, all threads (clock ticks)
cpu_ticks() {
    [[ $1 == nginx ]] && { echo 0; return; }
    awk '{print $14 + $15}' "/proc/${PIDS_OF[$1]}/stat"
}

# core_times: "total steal" clock ticks so far of the gateways' core (of all cores, unpinned). On a
# virtual machine steal is the time the host ran something else while this core had work: the share of
# it in a run says how much of that run's speed was the host's, not the code's.
core_times() {
    awk -v cpu="$GATEWAY_CPU" '$1 == cpu { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9 }' /proc/stat
}

# only STORE: the other gateways paused (SIGSTOP) while STORE is measured, so that their own background
# work (the request log's writes and prunes, the ledger's flushes) does not take the core they share;
# go_on: all of them running again.
only() {
    local s
    for s in "${!PIDS_OF[@]}"; do [[ $s != "$1" ]] && kill -STOP "${PIDS_OF[$s]}"; done
    return 0
}
go_on() {
    local s
    for s in "${!PIDS_OF[@]}"; do kill -CONT "${PIDS_OF[$s]}"; done
}

# run LABEL STORE CONNS MODEL KEY STREAM: one wrk run against that store's gateway, a line of
# $WORK/runs.tsv: label, store, conns, round, req/s, p50, p99, errors, for Redis the commands the
# gateway sent and all Redis ran (scripts count as one, the commands inside them too) per request,
# the gateway's CPU time per request (all its threads; 0 for nginx), and Redis's (all the
# gateways but the one measured are paused, so it is this one's).
run() {
    local label=$1 store=$2 c=$3 model=$4 key=$5 stream=$6 t before after url ticks0 ticks1 rcpu0 rcpu1
    t=$(( c < 2 ? c : 2 ))
    url=${GATEWAYS[$store]}/v1/chat/completions
    [[ ($store == nginx || $store == bare) && $stream == 1 ]] && url=${GATEWAYS[$store]}/stream/v1/chat/completions
    only "$store"
    BENCH_MODEL=$model BENCH_KEY=$key BENCH_STREAM=$stream "${ON_REST[@]}" wrk -t"$t" -c"$c" -d1s -s "$HERE/post.lua" "$url" >/dev/null
    before=$([[ $store == redis ]] && commands || echo 0,0)
    ticks0=$(cpu_ticks "$store"); rcpu0=$(redis_cpu); core0=$(core_times)
    BENCH_MODEL=$model BENCH_KEY=$key BENCH_STREAM=$stream "${ON_REST[@]}" wrk -t"$t" -c"$c" -d"$DURATION" --latency \
        -s "$HERE/post.lua" "$url" >"$WORK/wrk.txt"
    after=$([[ $store == redis ]] && commands || echo 0,0)
    ticks1=$(cpu_ticks "$store"); rcpu1=$(redis_cpu); core1=$(core_times)
    go_on
    kept_if_failed "$label" "$store" "$c"
    "$PY" -c "
import os, sys; sys.path.insert(0, sys.argv[1]); from report import parse_wrk
r = parse_wrk(open(sys.argv[2]).read())
(s0, a0), (s1, a1) = (map(int, x.split(',')) for x in (sys.argv[4], sys.argv[5]))
n = r['requests'] or 1
cpu_us = int(sys.argv[6]) / os.sysconf('SC_CLK_TCK') * 1e6 / n
redis_us = (float(sys.argv[8]) - float(sys.argv[7])) * 1e6 / n
(t0, st0), (t1, st1) = (map(int, x.split()) for x in (sys.argv[9], sys.argv[10]))
steal = 100 * (st1 - st0) / max(1, t1 - t0)
print(sys.argv[3], r['rps'], r['p50'], r['p99'], r['non2xx'] + r['socket_errors'], (s1 - s0) / n, (a1 - a0) / n, cpu_us,
      redis_us, steal, sep='\t')
" "$HERE" "$WORK/wrk.txt" "$label	$store	$c	${ROUND:-1}" "$before" "$after" "$((ticks1 - ticks0))" "$rcpu0" "$rcpu1" \
        "$core0" "$core1" >>"$WORK/runs.tsv"
}

# kept_if_failed LABEL STORE CONNS: a run that had errors (non-2xx answers, or wrk's socket errors and
# timeouts) keeps wrk's report and the end of that gateway's log in $RESULTS/errors/, to tell a stall
# of the whole machine (wrk's timeouts alone, nothing logged) from the gateway's own failures.
kept_if_failed() {
    grep -qE "Non-2xx|Socket errors" "$WORK/wrk.txt" || return 0
    local name dir="$RESULTS/errors"
    name=$(echo "$1-$2-c$3-round${ROUND:-1}" | tr -c 'A-Za-z0-9.\n-' '_')
    mkdir -p "$dir"
    cp "$WORK/wrk.txt" "$dir/$name.wrk.txt"
    [[ -f $WORK/gateway-$2.log ]] && tail -n 50 "$WORK/gateway-$2.log" >"$dir/$name.gateway.log"
    echo "bench: errors in '$1' ($2, c=$3, round ${ROUND:-1}): kept in ${dir#"$ROOT"/}/$name.*" >&2
}

# ROWS: label, model, key, stream. Each round runs every row on both stores, one after the other,
# so that a ratio of two rows (Redis to embedded, a stream to a whole answer) compares runs made
# seconds apart: this machine's speed drifts by more than the targets' margins over minutes.
ROWS=("no limits|bench-chat|sk-bench|0" "no limits, stream|bench-stream|sk-bench|1"
      "limits + budget|bench-chat|sk-bench-limits|0" "limits + budget, stream|bench-stream|sk-bench-limits|1"
      "cache hit|bench-cached|sk-bench|0")
rounds() {
    local round store row label model key stream stores
    for c in $CONNS; do
        for round in $(seq "$ROUNDS"); do
            stores="embedded redis"; (( round % 2 == 0 )) && stores="redis embedded"   # neither always first
            if (( c == 1 )); then     # the upstream alone, for what the gateway adds at one connection
                ROUND=$round run "direct" nginx 1 - sk-bench 0
                ROUND=$round run "direct, stream" nginx 1 - sk-bench 1
                ROUND=$round run "bare proxy" bare 1 - sk-bench 0
                ROUND=$round run "bare proxy, stream" bare 1 - sk-bench 1
            fi
            for row in "${ROWS[@]}"; do
                IFS='|' read -r label model key stream <<<"$row"
                for store in $stores; do ROUND=$round run "$label" "$store" "$c" "$model" "$key" "$stream"; done
            done
        done
    done
}

declare -A GATEWAYS PIDS_OF
GATEWAYS[nginx]=http://127.0.0.1:$NGINX_PORT
start_gateway embedded
GATEWAYS[embedded]=$GATEWAY; PIDS_OF[embedded]=$GATEWAY_PID
start_gateway redis "redis://127.0.0.1:$REDIS_PORT/0"
GATEWAYS[redis]=$GATEWAY; PIDS_OF[redis]=$GATEWAY_PID
BARE_PORT=$(free_port)
"${ON_GATEWAY[@]}" "$PY" "$HERE/upstream_clients.py" serve --client pool --port "$BARE_PORT" \
    --upstream "http://127.0.0.1:$NGINX_PORT" >"$WORK/bare.log" 2>&1 &
PIDS+=($!); PIDS_OF[bare]=$!; GATEWAYS[bare]=http://127.0.0.1:$BARE_PORT
wait_http "${GATEWAYS[bare]}/"
: >"$WORK/runs.tsv"
rm -rf "$RESULTS/errors"      # what an earlier run kept
rounds
# Streaming time to first byte, one connection (bench/ttfb.py), each store and key in turn.
# 1,000 requests each (~0.3 s), after 100 not counted and a moment's rest: a gateway just resumed
# (SIGCONT) first catches up on the timers that were due while it was paused.
for round in $(seq "$ROUNDS"); do
    only nginx
    "${ON_REST[@]}" "$PY" "$HERE/ttfb.py" --url "http://127.0.0.1:$NGINX_PORT/stream/v1/chat/completions" -n 1000 \
        --json-out "$WORK/ttfb-direct-$round.json" >/dev/null
    go_on; only bare; sleep 0.5
    "${ON_REST[@]}" "$PY" "$HERE/ttfb.py" --url "${GATEWAYS[bare]}/stream/v1/chat/completions" -n 1000 --warmup 100 \
        --json-out "$WORK/ttfb-bare-$round.json" >/dev/null
    stores="embedded redis"; (( round % 2 == 0 )) && stores="redis embedded"   # neither always first
    for store in $stores; do
        for key in sk-bench sk-bench-limits; do
            go_on; only "$store"; sleep 0.5
            "${ON_REST[@]}" "$PY" "$HERE/ttfb.py" --url "${GATEWAYS[$store]}/v1/chat/completions" --key "$key" -n 1000 \
                --warmup 100 \
                --json-out "$WORK/ttfb-$store-$key-$round.json" >/dev/null
        done
    done
done
go_on
RSS=$(for store in embedded redis; do
    echo "$store $(( $(awk '/^VmRSS:/ {print $2}' "/proc/${PIDS_OF[$store]}/status") / 1024 ))"; done)
"$PY" - "$WORK/runs.tsv" "$ROUNDS" "$RSS" "$WORK" <<'PYEOF' >"$WORK/table.md"
import glob, json, statistics, sys
runs: dict[tuple[str, str, str], list[list[float]]] = {}
by_round: dict[tuple[str, str, str, str], list[float]] = {}
for line in open(sys.argv[1]):
    label, store, c, round_, *numbers = line.rstrip("\n").split("\t")
    runs.setdefault((label, store, c), []).append([float(x) for x in numbers])
    by_round[(label, store, c, round_)] = [float(x) for x in numbers]
def median(label, store, c, i):
    return statistics.median(r[i] for r in runs[(label, store, c)])
print(f"Median of {sys.argv[2]} runs per row; each round runs every row on both stores in turn.\n")
print("| gateway → nginx | store | conns | req/s | p50 ms | p99 ms | errors | Redis commands sent / request (all run) "
      "| gateway CPU µs / request | Redis CPU µs / request | steal % |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (label, store, c) in runs:
    if store in ("nginx", "bare"):
        continue
    per = f"{median(label, store, c, 4):.2f} ({median(label, store, c, 5):.0f})" if store == "redis" else ""
    errors = sum(int(r[3]) for r in runs[(label, store, c)])
    print(f"| {label} | {store} | {c} | {median(label, store, c, 0):,.0f} | {median(label, store, c, 1):.2f} | "
          f"{median(label, store, c, 2):.2f} | {errors} | {per} | {median(label, store, c, 6):.0f} | "
          + (f"{median(label, store, c, 7):.1f} |" if store == "redis" else " |") + f" {median(label, store, c, 8):.0f} |")
if ("direct", "nginx", "1") in runs:     # CONNS has 1
    print("\n| at one connection: p50 added to nginx's (ms) | embedded | Redis |")
    print("|---|---:|---:|")
    for label, direct in [("no limits", "direct"), ("limits + budget", "direct"),
                          ("no limits, stream", "direct, stream"), ("limits + budget, stream", "direct, stream")]:
        base = median(direct, "nginx", "1", 1)
        print(f"| {label} | " + " | ".join(f"{median(label, store, '1', 1) - base:.2f}"
                                          for store in ("embedded", "redis")) + " |")
    print(f"| a bare pass-through proxy, no gateway code (whole; stream) | "
          f"{median('bare proxy', 'bare', '1', 1) - median('direct', 'nginx', '1', 1):.2f}; "
          f"{median('bare proxy, stream', 'bare', '1', 1) - median('direct, stream', 'nginx', '1', 1):.2f} | |")
def ttfb(name):
    return statistics.median(json.load(open(f))["ttfb_p50"] for f in glob.glob(f"{sys.argv[4]}/ttfb-{name}-*.json"))
direct = ttfb("direct")
print(f"\n| stream time to first byte, one connection: p50 added (ms; nginx alone {direct:.3f}) | embedded | Redis |")
print("|---|---:|---:|")
for label, key in [("no limits", "sk-bench"), ("limits + budget", "sk-bench-limits")]:
    print(f"| {label} | " + " | ".join(f"{ttfb(f'{store}-{key}') - direct:.3f}" for store in ("embedded", "redis")) + " |")
print(f"| a bare pass-through proxy, no gateway code | {ttfb('bare') - direct:.3f} | |")
rss = dict(line.split() for line in sys.argv[3].splitlines())
print(f"\nRSS after the runs: embedded {rss['embedded']} MiB, Redis {rss['redis']} MiB")
steals = sorted(r[8] for rows in runs.values() for r in rows)
print(f"\nSteal on the gateways' core (the host running something else; % of the core's time in a run): "
      f"median {statistics.median(steals):.0f}, runs from {steals[0]:.0f} to {steals[-1]:.0f}")
conns = sorted({c for _, _, c in runs}, key=int)
QUIET = 5.0     # % steal: a round whose two runs both lost less than this to the host is a quiet one
def per_round(a, b, c, i, invert=False, quiet=False):
    """The median over rounds of a's figure i over b's, each pair from one round (runs seconds apart);
    `quiet`: only the rounds where neither run lost QUIET % of the core or more to steal (and how many)."""
    values = []
    for (label, store, c_, round_), numbers in by_round.items():
        if (label, store, c_) == (*a, c) and (*b, c, round_) in by_round and by_round[(*b, c, round_)][i]:
            other = by_round[(*b, c, round_)]
            if quiet and max(numbers[8], other[8]) >= QUIET:
                continue
            x, y = numbers[i], other[i]
            values.append(y / x if invert else x / y)
    if not values:
        return "n/a (0)" if quiet else "n/a"
    return f"{statistics.median(values):.2f}" + (f" ({len(values)})" if quiet else "")
def ratio(a, b, c, quiet=False):
    return per_round(a, b, c, 0, quiet=quiet)
def by_cpu(a, b, c):    # requests a core can serve: the inverse of CPU time per request
    return per_round(a, b, c, 6, invert=True)
top = conns[-1]
print("\n| ratio (median over rounds of the ratio within a round) | "
      + " | ".join(f"req/s, c={c}" for c in conns) + f" | by CPU / request, c={top} "
      f"| req/s, c={top}, rounds with steal under {QUIET:g}% (how many) |")
print("|---|" + "---:|" * (len(conns) + 2))
for name, a, b in [
        ("Redis ÷ embedded, limits + budget", ("limits + budget", "redis"), ("limits + budget", "embedded")),
        ("Redis ÷ embedded, limits + budget, stream", ("limits + budget, stream", "redis"),
         ("limits + budget, stream", "embedded")),
        ("Redis ÷ embedded, no limits", ("no limits", "redis"), ("no limits", "embedded")),
        ("stream ÷ whole, embedded, no limits", ("no limits, stream", "embedded"), ("no limits", "embedded")),
        ("stream ÷ whole, embedded, limits + budget", ("limits + budget, stream", "embedded"),
         ("limits + budget", "embedded")),
        ("stream ÷ whole, Redis, limits + budget", ("limits + budget, stream", "redis"), ("limits + budget", "redis"))]:
    print(f"| {name} | " + " | ".join(ratio(a, b, c) for c in conns) + f" | {by_cpu(a, b, top)} "
          f"| {ratio(a, b, top, quiet=True)} |")
PYEOF
cat "$WORK/table.md"
mkdir -p "$RESULTS"; cp "$WORK/table.md" "$RESULTS/limits.md"
echo "bench: written to ${RESULTS#"$ROOT"/}/limits.md"
