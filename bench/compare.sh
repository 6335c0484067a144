#!/usr/bin/env bash
# Side by side with another gateway: the same wrk load against nginx through this
# gateway and through the other one, one process each, no limits, and the ratio.
#
#   COMPARE=litellm bash bench/compare.sh     # installs litellm[proxy] into a temporary venv
#
# Knobs: DURATION (default 10s), CONNS (default "1 16"), COMPARE_VENV (reuse a venv that
# already has the other gateway installed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PY=${PYTHON:-$ROOT/.venv/bin/python}
DURATION=${DURATION:-10s}; [[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
CONNS=${CONNS:-1 16}
COMPARE=${COMPARE:-litellm}
[[ $COMPARE == litellm ]] || { echo "bench: COMPARE=$COMPARE is not known (litellm)" >&2; exit 1; }
for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found" >&2; exit 1; }
done

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gateway-compare.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ $rc -ne 0 ]] && tail -n 30 "$WORK"/*.log >&2 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
wait_http() { for _ in $(seq 600); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.2; done; return 1; }

NGINX_PORT=$(free_port)
sed -e "s#__PORT__#$NGINX_PORT#g" -e "s#__PREFIX__#$WORK#g" "$HERE/nginx.conf.template" >"$WORK/nginx.conf"
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/"
UPSTREAM=http://127.0.0.1:$NGINX_PORT/v1

# The other gateway, in a venv of its own.
VENV=${COMPARE_VENV:-$WORK/venv}
if [[ ! -x $VENV/bin/litellm ]]; then
    echo "bench: installing litellm[proxy] into $VENV (a few minutes)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'litellm[proxy]' >"$WORK/install.log" 2>&1
fi
cat >"$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: bench-chat
    litellm_params: {model: openai/gpt-4.1-mini, api_base: "$UPSTREAM", api_key: sk-upstream}
general_settings: {master_key: sk-bench}
litellm_settings: {drop_params: true}
EOF
OTHER_PORT=$(free_port)
"$VENV/bin/litellm" --config "$WORK/litellm.yaml" --host 127.0.0.1 --port "$OTHER_PORT" --num_workers 1 \
    >"$WORK/other.log" 2>&1 &
PIDS+=($!)

GATEWAY_PORT=$(free_port)
BENCH_UPSTREAM=http://127.0.0.1:$NGINX_PORT BENCH_DATA_DIR=$WORK/data \
    "$PY" -m gateway serve --config "$HERE/gateway.bench.yaml" --port "$GATEWAY_PORT" --log-level warning \
    >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$GATEWAY_PORT/healthz"
wait_http "http://127.0.0.1:$OTHER_PORT/health/liveliness" || { echo "bench: $COMPARE did not start" >&2; exit 1; }

run() {  # label url conns: one row
    local t=$(( $3 < 2 ? $3 : 2 ))
    BENCH_MODEL=bench-chat wrk -t"$t" -c"$3" -d2s -s "$HERE/post.lua" "$2" >/dev/null
    BENCH_MODEL=bench-chat wrk -t"$t" -c"$3" -d"$DURATION" --latency -s "$HERE/post.lua" "$2" >"$WORK/wrk.txt"
    "$PY" -c "
import sys; sys.path.insert(0, sys.argv[1]); from report import parse_wrk
r = parse_wrk(open(sys.argv[2]).read())
print(f'{sys.argv[3]}\t{sys.argv[4]}\t{r[\"rps\"]:.0f}\t{r[\"p50\"]:.2f}\t{r[\"p99\"]:.2f}\t{r[\"non2xx\"] + r[\"socket_errors\"]}')
" "$HERE" "$WORK/wrk.txt" "$1" "$3" >>"$WORK/rows.tsv"
}
for c in $CONNS; do
    run direct "$UPSTREAM/chat/completions" "$c"
    run gateway "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" "$c"
    run "$COMPARE" "http://127.0.0.1:$OTHER_PORT/v1/chat/completions" "$c"
done
"$PY" - "$WORK/rows.tsv" "$COMPARE" <<'PYEOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, c, rps, p50, p99, errors = line.split("\t")
    rows[(name, c)] = (float(rps), float(p50), float(p99), int(errors))
other = sys.argv[2]
print("| through | conns | req/s | p50 ms | p99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|")
for (name, c), (rps, p50, p99, errors) in rows.items():
    print(f"| {name} | {c} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {errors} |")
print()
for c in sorted({c for _, c in rows}, key=int):
    d, g, o = rows.get(("direct", c)), rows.get(("gateway", c)), rows.get((other, c))
    if d and g and o and o[0]:
        print(f"c={c}: gateway {g[0] / o[0]:.1f}x the requests/s of {other}; added p50 "
              f"{g[1] - d[1]:+.2f} ms vs {o[1] - d[1]:+.2f} ms")
PYEOF
