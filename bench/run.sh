#!/usr/bin/env bash
# The gateway's own cost: the same requests direct to a fake upstream (nginx)
# and through the gateway in front of it. See bench/README.md.
#
#   bash bench/run.sh                       # DURATION=10s per run
#   DURATION=5 UPSTREAM_CLIENTS=1 bash bench/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PY=${PYTHON:-$ROOT/.venv/bin/python}
[[ -x $PY ]] || PY=$(command -v python3)
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
WRK=${WRK:-$(command -v wrk || true)}

DURATION=${DURATION:-10s}; [[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
WARMUP=${WARMUP:-2s};      [[ $WARMUP =~ ^[0-9]+$ ]] && WARMUP=${WARMUP}s
WRK_THREADS=${WRK_THREADS:-2}
CONNS=${CONNS:-1 16 64}   # c=1: the latency one request adds; 16/64: under load (queueing included)
MOCK_CONNS=${MOCK_CONNS:-16}
TTFB_N=${TTFB_N:-500}
UPSTREAM_CLIENTS=${UPSTREAM_CLIENTS:-0}
RESULTS=${RESULTS:-$HERE/results}

for tool in "$NGINX" "$WRK" "$PY" curl; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found (needs nginx, wrk, curl, the venv)" >&2; exit 1; }
done

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=${NGINX_PORT:-$(free_port)}
GATEWAY_PORT=${GATEWAY_PORT:-$(free_port)}
[[ $NGINX_PORT != "$GATEWAY_PORT" ]] || { echo "bench: ports collide" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gateway-bench.XXXXXX")
NGINX_PID=""; GATEWAY_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in $GATEWAY_PID $NGINX_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $GATEWAY_PID $NGINX_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $rc -ne 0 ]]; then
        echo "bench: failed (exit $rc); logs:" >&2
        tail -n 30 "$WORK"/nginx.log "$WORK"/gateway.log 2>/dev/null >&2 || true
    fi
    [[ ${KEEP_WORK:-0} == 1 ]] && echo "bench: work dir kept: $WORK" >&2 || rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_http() {  # url what: until it answers at all, 15 s at most
    for _ in $(seq 150); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "bench: $2 did not come up at $1" >&2; return 1
}

check_post() {  # url model what: one real request must answer 200
    local code
    code=$(curl -s -o "$WORK/check.out" -w '%{http_code}' --max-time 10 -X POST "$1" \
        -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' \
        -d "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]${4:-}}")
    if [[ $code != 200 ]]; then
        echo "bench: $3 answered $code: $(head -c 400 "$WORK/check.out")" >&2; return 1
    fi
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$GATEWAY_PID/status"; }
cpu_s() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.4f", ($12 + $13) / hz}'; }

# wrk_run name conns url model: warm up, then the measured run into $WORK/wrk-name-cC.txt
wrk_run() {
    local name=$1 c=$2 url=$3 model=$4 out="$WORK/wrk-$1-c$2.txt" cpu0 cpu1
    local api=chat store=0
    [[ $name == responses* ]] && api=responses
    [[ $name == messages ]] && api=messages
    [[ $name == responses-stored ]] && store=1
    export BENCH_API=$api BENCH_STORE=$store
    local t=$(( c < WRK_THREADS ? c : WRK_THREADS ))   # wrk wants connections >= threads
    BENCH_MODEL=$model "$WRK" -t"$t" -c"$c" -d"$WARMUP" -s "$HERE/post.lua" "$url" >/dev/null
    [[ $name == direct ]] || cpu0=$(cpu_s "$GATEWAY_PID")
    BENCH_MODEL=$model "$WRK" -t"$t" -c"$c" -d"$DURATION" --latency -s "$HERE/post.lua" "$url" >"$out"
    if [[ $name != direct ]]; then
        cpu1=$(cpu_s "$GATEWAY_PID")
        awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.4f", b - a}' >"$WORK/cpu-$name-c$c.txt"
    fi
    printf '  %-8s c=%-3s %s\n' "$name" "$c" "$("$PY" "$HERE/report.py" wrk "$out")"
}

# --- nginx, the fake upstream ---
sed -e "s#__PORT__#$NGINX_PORT#g" -e "s#__PREFIX__#$WORK#g" "$HERE/nginx.conf.template" >"$WORK/nginx.conf"
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
UPSTREAM=http://127.0.0.1:$NGINX_PORT
wait_http "$UPSTREAM/" nginx
DIRECT_URL=$UPSTREAM/v1/chat/completions
check_post "$DIRECT_URL" bench-chat "nginx"

# --- the gateway, one process ---
BENCH_UPSTREAM=$UPSTREAM BENCH_DATA_DIR=$WORK/data GATEWAY_LOG_LEVEL=warning \
    "$PY" -m gateway serve --config "$HERE/gateway.bench.yaml" --host 127.0.0.1 --port "$GATEWAY_PORT" \
    >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
GATEWAY=http://127.0.0.1:$GATEWAY_PORT
wait_http "$GATEWAY/healthz" gateway
GATEWAY_URL=$GATEWAY/v1/chat/completions
check_post "$GATEWAY_URL" bench-chat "gateway (bench-chat)"
check_post "$GATEWAY_URL" mock-chat "gateway (mock-chat)"
check_post "$GATEWAY_URL" bench-stream "gateway (bench-stream)" ',"stream":true'
RSS_BEFORE=$(rss_kb)

echo "bench: nginx $UPSTREAM, gateway $GATEWAY (pid $GATEWAY_PID), wrk -t$WRK_THREADS -d$DURATION (+$WARMUP warmup)"
for c in $CONNS; do
    wrk_run direct "$c" "$DIRECT_URL" bench-chat
    wrk_run gateway "$c" "$GATEWAY_URL" bench-chat
done
for c in $MOCK_CONNS; do
    wrk_run mock "$c" "$GATEWAY_URL" mock-chat
done
# The Responses API, translated to the same chat upstream (store false; then stored, as by default).
for c in $CONNS; do
    wrk_run responses "$c" "$GATEWAY/v1/responses" bench-chat
done
for c in $MOCK_CONNS; do
    wrk_run responses-stored "$c" "$GATEWAY/v1/responses" bench-chat
done
# Anthropic's Messages API, translated to the same chat upstream.
for c in $CONNS; do
    wrk_run messages "$c" "$GATEWAY/v1/messages" bench-chat
done

echo "bench: streaming time to first byte, $TTFB_N sequential requests each"
"$PY" "$HERE/ttfb.py" --url "$UPSTREAM/stream/v1/chat/completions" --model bench-stream -n "$TTFB_N" \
    --json-out "$WORK/ttfb-direct.json"
"$PY" "$HERE/ttfb.py" --url "$GATEWAY_URL" --model bench-stream -n "$TTFB_N" --json-out "$WORK/ttfb-gateway.json"
printf 'before=%s\nafter=%s\n' "$RSS_BEFORE" "$(rss_kb)" >"$WORK/rss.txt"

if [[ $UPSTREAM_CLIENTS == 1 ]]; then
    echo "bench: upstream clients, aiohttp vs httpx"
    "$PY" "$HERE/upstream_clients.py" --upstream "$UPSTREAM" -d "$DURATION" --warmup "$WARMUP" \
        -c 16 -t "$WRK_THREADS" --json-out "$WORK/upstream-clients.json"
fi

kill -0 "$GATEWAY_PID" 2>/dev/null || { echo "bench: the gateway died during the run" >&2; exit 1; }
if grep -qE 'Traceback|ERROR' "$WORK/gateway.log"; then
    echo "bench: note: the gateway logged errors during the run (first lines):" >&2
    grep -m5 -E 'Traceback|ERROR' "$WORK/gateway.log" >&2 || true
fi

rm -rf "$RESULTS/latest-raw"; mkdir -p "$RESULTS/latest-raw"
cp "$WORK"/wrk-*.txt "$WORK"/*.json "$WORK/gateway.log" "$RESULTS/latest-raw/" 2>/dev/null || true
echo
BENCH_WHEN=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
BENCH_HOST="$(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
BENCH_PY="$("$PY" -V 2>&1)" BENCH_CONNS="$CONNS $MOCK_CONNS" \
DURATION=$DURATION WARMUP=$WARMUP WRK_THREADS=$WRK_THREADS \
    "$PY" "$HERE/report.py" table "$WORK" | tee "$RESULTS/latest.md"
echo "bench: written to ${RESULTS#"$ROOT"/}/latest.md"
