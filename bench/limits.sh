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

commands() {  # "sent,run": commands the gateway sent so far (scripts and the cache's GET/SET: the scripts
              # never call GET or SET), and all Redis ran (the scripts' own calls too)
    redis-cli -p "$REDIS_PORT" info commandstats | awk -F'[=,:]' '
        /^cmdstat_/ { all += $3 }
        /^cmdstat_(evalsha|eval|get|set|script\|load|client\|setname):/ { sent += $3 }
        END { printf "%d,%d", sent, all }'
}

# measure LABEL MODEL KEY [STREAM]: a row per connection count; with a Redis store, the
# commands Redis ran per request (scripts count as one, the commands inside them too).
measure() {
    for c in $CONNS; do
        local t=$(( c < 2 ? c : 2 )) before after
        BENCH_MODEL=$2 BENCH_KEY=$3 BENCH_STREAM=${4:-0} wrk -t"$t" -c"$c" -d2s -s "$HERE/post.lua" \
            "$GATEWAY/v1/chat/completions" >/dev/null
        before=$([[ -n ${REDIS_ON:-} ]] && commands || echo 0,0)
        BENCH_MODEL=$2 BENCH_KEY=$3 BENCH_STREAM=${4:-0} wrk -t"$t" -c"$c" -d"$DURATION" --latency \
            -s "$HERE/post.lua" "$GATEWAY/v1/chat/completions" >"$WORK/wrk.txt"
        after=$([[ -n ${REDIS_ON:-} ]] && commands || echo 0,0)
        "$PY" -c "
import sys; sys.path.insert(0, sys.argv[1]); from report import parse_wrk
r = parse_wrk(open(sys.argv[2]).read())
per = ''
if sys.argv[7] and r['requests']:
    (s0, a0), (s1, a1) = (map(int, x.split(',')) for x in (sys.argv[5], sys.argv[6]))
    per = f'{(s1 - s0) / r[\"requests\"]:.2f} ({(a1 - a0) / r[\"requests\"]:.0f})'
print(f'| {sys.argv[3]} | {sys.argv[4]} | {r[\"rps\"]:,.0f} | {r[\"p50\"]:.2f} | {r[\"p99\"]:.2f} | '
      f'{r[\"non2xx\"] + r[\"socket_errors\"]} | {per} |')
" "$HERE" "$WORK/wrk.txt" "$1" "$c" "$before" "$after" "${REDIS_ON:-}"
    done
}

# Not a `{ ...; } | tee` pipeline: that would start the gateways in a subshell,
# out of reach of the cleanup trap.
exec 3>"$WORK/table.md"
{
echo "| gateway → nginx | conns | req/s | p50 ms | p99 ms | errors | Redis commands sent / request (all run) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
start_gateway embedded
measure "no limits, embedded" bench-chat sk-bench
measure "no limits, embedded, stream" bench-stream sk-bench 1
measure "limits + budget, embedded" bench-chat sk-bench-limits
measure "limits + budget, embedded, stream" bench-stream sk-bench-limits 1
measure "cache hit, embedded" bench-cached sk-bench
RSS_EMBEDDED=$(awk '/^VmRSS:/ {print $2}' "/proc/$GATEWAY_PID/status")
kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true
start_gateway redis "redis://127.0.0.1:$REDIS_PORT/0"
REDIS_ON=1
measure "no limits, Redis" bench-chat sk-bench
measure "no limits, Redis, stream" bench-stream sk-bench 1
measure "limits + budget, Redis" bench-chat sk-bench-limits
measure "limits + budget, Redis, stream" bench-stream sk-bench-limits 1
measure "cache hit, Redis" bench-cached sk-bench
RSS_REDIS=$(awk '/^VmRSS:/ {print $2}' "/proc/$GATEWAY_PID/status")
echo
echo "RSS after the runs: embedded $((RSS_EMBEDDED / 1024)) MiB, Redis $((RSS_REDIS / 1024)) MiB"
} >&3
exec 3>&-
"$PY" - "$WORK/table.md" <<'PYEOF' >>"$WORK/table.md"
import re, sys
rows = {}
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) >= 3 and cells[1].isdigit():
        rows[(cells[0], cells[1])] = float(cells[2].replace(",", ""))
def ratio(a, b, c):
    return f"{rows[(a, c)] / rows[(b, c)]:.2f}" if (a, c) in rows and (b, c) in rows and rows[(b, c)] else "n/a"
conns = sorted({c for _, c in rows}, key=int)
print("\n| ratio (req/s) | " + " | ".join(f"c={c}" for c in conns) + " |")
print("|---|" + "---:|" * len(conns))
for label, a, b in [
        ("Redis ÷ embedded, limits + budget", "limits + budget, Redis", "limits + budget, embedded"),
        ("Redis ÷ embedded, limits + budget, stream", "limits + budget, Redis, stream",
         "limits + budget, embedded, stream"),
        ("Redis ÷ embedded, no limits", "no limits, Redis", "no limits, embedded"),
        ("stream ÷ whole, embedded, no limits", "no limits, embedded, stream", "no limits, embedded"),
        ("stream ÷ whole, Redis, limits + budget", "limits + budget, Redis, stream", "limits + budget, Redis")]:
    print(f"| {label} | " + " | ".join(ratio(a, b, c) for c in conns) + " |")
PYEOF
cat "$WORK/table.md"
mkdir -p "$RESULTS"; cp "$WORK/table.md" "$RESULTS/limits.md"
echo "bench: written to ${RESULTS#"$ROOT"/}/limits.md"
