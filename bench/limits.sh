#!/usr/bin/env bash
# What limits, cost tracking and the cache add: the same requests through the
# gateway to nginx with a key that has no limits, with a key that has every
# limit and a budget (embedded store, then Redis), and to a cached model.
#
#   bash bench/limits.sh            # DURATION=10s per run
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PY=${PYTHON:-$ROOT/.venv/bin/python}
DURATION=${DURATION:-10s}; [[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
CONNS=${CONNS:-1 16}
RESULTS=${RESULTS:-$HERE/results}
for tool in nginx wrk redis-server curl; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found (apt-get install nginx wrk redis-server curl)" >&2; exit 1; }
done

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gateway-limits.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ $rc -ne 0 ]] && tail -n 20 "$WORK"/*.log >&2 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

wait_http() { for _ in $(seq 150); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }

NGINX_PORT=$(free_port)
sed -e "s#__PORT__#$NGINX_PORT#g" -e "s#__PREFIX__#$WORK#g" "$HERE/nginx.conf.template" >"$WORK/nginx.conf"
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)

# start_gateway NAME [REDIS_URL]: one gateway process on the bench config
start_gateway() {
    local port; port=$(free_port)
    BENCH_UPSTREAM=http://127.0.0.1:$NGINX_PORT BENCH_DATA_DIR=$WORK/data-$1 BENCH_REDIS_URL=${2:-} \
        "$PY" -m gateway serve --config "$HERE/gateway.bench.yaml" --port "$port" --log-level warning \
        >"$WORK/gateway-$1.log" 2>&1 &
    PIDS+=($!)
    GATEWAY_PID=$!
    GATEWAY=http://127.0.0.1:$port
    wait_http "$GATEWAY/healthz"
}

measure() {  # label model key
    for c in $CONNS; do
        local t=$(( c < 2 ? c : 2 ))
        BENCH_MODEL=$2 BENCH_KEY=$3 wrk -t"$t" -c"$c" -d2s -s "$HERE/post.lua" "$GATEWAY/v1/chat/completions" >/dev/null
        BENCH_MODEL=$2 BENCH_KEY=$3 wrk -t"$t" -c"$c" -d"$DURATION" --latency -s "$HERE/post.lua" \
            "$GATEWAY/v1/chat/completions" >"$WORK/wrk.txt"
        "$PY" -c "
import sys; sys.path.insert(0, sys.argv[1]); from report import parse_wrk
r = parse_wrk(open(sys.argv[2]).read())
print(f'| {sys.argv[3]} | {sys.argv[4]} | {r[\"rps\"]:,.0f} | {r[\"p50\"]:.2f} | {r[\"p99\"]:.2f} | {r[\"non2xx\"] + r[\"socket_errors\"]} |')
" "$HERE" "$WORK/wrk.txt" "$1" "$c"
    done
}

# Not a `{ ...; } | tee` pipeline: that would start the gateways in a subshell,
# out of reach of the cleanup trap.
exec 3>"$WORK/table.md"
{
echo "| gateway → nginx | conns | req/s | p50 ms | p99 ms | errors |"
echo "|---|---:|---:|---:|---:|---:|"
start_gateway embedded
measure "no limits (key without limits or budget)" bench-chat sk-bench
measure "limits + budget + cost, embedded store" bench-chat sk-bench-limits
measure "cache hit (embedded)" bench-cached sk-bench
kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true
start_gateway redis "redis://127.0.0.1:$REDIS_PORT/0"
measure "limits + budget + cost, Redis store" bench-chat sk-bench-limits
measure "cache hit (Redis)" bench-cached sk-bench
} >&3
exec 3>&-
cat "$WORK/table.md"
mkdir -p "$RESULTS"; cp "$WORK/table.md" "$RESULTS/limits.md"
echo "bench: written to ${RESULTS#"$ROOT"/}/limits.md"
