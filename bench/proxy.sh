#!/usr/bin/env bash
# HTTP proxy benchmark for sobot-broker: the broker's HTTP proxy against nginx proxy_pass and
# against the upstream itself, with the same load generator (wrk) and the same fast static
# upstream (nginx `return 200`), plus sobot.request over the JSON-RPC socket.
#
# Usage: bench/proxy.sh
#   SOBOT_BROKER_BIN  the broker binary (default /tmp/sb-proxybench: copy a release build there)
#   DURATION          seconds of measured load per target (default 20)
#   WARMUP            seconds of unmeasured load before each (default 3)
#   CONNECTIONS       keep-alive connections (default 64)
#   WRK_THREADS       wrk threads (default 2)
#   JSONRPC_PROCESSES processes the Python JSON-RPC generator spreads its connections over (default 2)
#   KEEP_TMP=1        keep the temporary directory (logs, configs; it holds a scratch master key)
# Needs: wrk, nginx, curl, python3. Prints `RESULT name value` lines; exits non-zero if a target
# does not answer 200 with the expected JSON. Never prints the client key or a token.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${SOBOT_BROKER_BIN:-/tmp/sb-proxybench}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
JSONRPC_PROCESSES=${JSONRPC_PROCESSES:-2}
API_PATH=/api/ws/5/ticket/query_ticket_list
EXPECTED='{"item":{"total":1,"list":[]},"ret_code":"000000","ret_msg":"Success"}'
UPSTREAM_TOKEN=0123456789abcdef0123456789abcdef   # must match bench/proxy/upstream.conf

for tool in wrk nginx curl python3; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "FAIL: no broker binary at $BIN (set SOBOT_BROKER_BIN)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/proxybench.XXXXXX)
PIDS=()
KEY=""

cleanup() {
    local status=$? pid waited
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 150 ]; do sleep 0.1; waited=$((waited + 1)); done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Anything shown from logs goes through this, so neither the client key nor the token can leak.
redact() {
    if [ -n "$KEY" ]; then sed -e "s/$UPSTREAM_TOKEN/[token]/g" -e "s/$KEY/[client key]/g"
    else sed -e "s/$UPSTREAM_TOKEN/[token]/g"; fi
}

fail() {
    echo "FAIL: $*" >&2
    local log
    for log in "$TMP"/*.log; do
        [ -s "$log" ] || continue
        echo "--- last lines of $(basename "$log")" >&2
        tail -n 20 "$log" | redact >&2
    done
    exit 1
}

load_averages() { cut -d' ' -f1-3 /proc/loadavg; }

# Three free loopback ports (closed again before use; a tiny race nobody else is likely to win).
read -r UPSTREAM_PORT NGINX_PORT BROKER_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

echo "host: $(nproc) CPUs; uptime at start: $(uptime)"
echo "broker binary: $BIN ($(stat -c '%y' "$BIN" | cut -d. -f1), $("$BIN" --version 2>/dev/null || echo '?'))"
echo "load: wrk -t$WRK_THREADS -c$CONNECTIONS, ${WARMUP}s warm-up + ${DURATION}s measured, POST $API_PATH"
LOAD_START=$(load_averages)

render() { # template output
    sed -e "s|@TMP@|$TMP|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@NGINX_PORT@|$NGINX_PORT|g" "$1" >"$2"
}

wait_http() { # name url: until it answers at all (any HTTP status), at most 30 s
    local tries=0
    until curl -s -o /dev/null --max-time 1 "$2"; do
        tries=$((tries + 1))
        [ "$tries" -lt 150 ] || fail "$1 did not come up at $2"
        sleep 0.2
    done
}

# 1. The upstream, and 2. nginx proxying to it.
mkdir -p "$TMP"/upstream-tmp "$TMP"/nginx-proxy-tmp
render "$HERE/proxy/upstream.conf" "$TMP/upstream.conf"
render "$HERE/proxy/nginx-proxy.conf" "$TMP/nginx-proxy.conf"
nginx -t -q -p "$TMP" -e "$TMP/upstream-error.log" -c "$TMP/upstream.conf" 2>"$TMP/nginx-t.log" || fail "upstream.conf does not parse"
nginx -t -q -p "$TMP" -e "$TMP/nginx-proxy-error.log" -c "$TMP/nginx-proxy.conf" 2>"$TMP/nginx-t.log" || fail "nginx-proxy.conf does not parse"
nginx -p "$TMP" -e "$TMP/upstream-error.log" -c "$TMP/upstream.conf" 2>>"$TMP/upstream-error.log" &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
nginx -p "$TMP" -e "$TMP/nginx-proxy-error.log" -c "$TMP/nginx-proxy.conf" 2>>"$TMP/nginx-proxy-error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http upstream "http://127.0.0.1:$UPSTREAM_PORT/"
wait_http "nginx proxy" "http://127.0.0.1:$NGINX_PORT/"

# 3. The broker: a scratch home, one tenant, a client key, the daemon with the HTTP proxy.
export SOBOT_BROKER_HOME="$TMP/home"
unset SOBOT_BROKER_DATABASE_URL SOBOT_BROKER_SOCKET SOBOT_BROKER_MASTER_KEY_FILE
"$BIN" init >"$TMP/cli.log" 2>&1 || fail "sobot-broker init"
echo '{"tenants":[{"id":"acme","credentials":[{"region":"sg","appid":"1","app_key":"2"}]}]}' >"$TMP/tenants.json"
"$BIN" tenant import "$TMP/tenants.json" >>"$TMP/cli.log" 2>&1 || fail "sobot-broker tenant import"
KEY=$("$BIN" access key create --tenant acme --name proxybench 2>>"$TMP/cli.log") || fail "sobot-broker access key create"
[ -n "$KEY" ] || fail "access key create printed no key"
SOCKET="$SOBOT_BROKER_HOME/broker.sock"
SOBOT_BROKER_REGION_URLS="sg=http://127.0.0.1:$UPSTREAM_PORT" \
    "$BIN" serve --http-proxy "127.0.0.1:$BROKER_PORT" --log-level warning >"$TMP/broker.log" 2>&1 &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
wait_http broker "http://127.0.0.1:$BROKER_PORT/_broker/health"
for _ in $(seq 1 150); do [ -S "$SOCKET" ] && break; sleep 0.2; done
[ -S "$SOCKET" ] || fail "the broker's JSON-RPC socket did not appear"

# One checked request to each before any load.
check() { # name url [curl args...]
    local name=$1 url=$2 code
    shift 2
    code=$(curl -sS -o "$TMP/check.body" -w '%{http_code}' --max-time 10 -X POST \
        -H 'Content-Type: application/json' -d '{"page_no":1,"page_size":20}' "$@" "$url") || fail "$name: curl failed"
    [ "$code" = 200 ] || fail "$name answered HTTP $code: $(head -c 300 "$TMP/check.body" | redact)"
    [ "$(cat "$TMP/check.body")" = "$EXPECTED" ] || fail "$name answered an unexpected body: $(head -c 300 "$TMP/check.body" | redact)"
    echo "check: $name -> 200 $EXPECTED"
}
check "upstream direct" "http://127.0.0.1:$UPSTREAM_PORT$API_PATH"
check "nginx proxy_pass" "http://127.0.0.1:$NGINX_PORT$API_PATH"
# The key goes to curl through a config on stdin, not argv.
printf 'header = "Authorization: Bearer %s"\n' "$KEY" | check "broker HTTP proxy" "http://127.0.0.1:$BROKER_PORT$API_PATH" -H 'X-Sobot-Tenant: acme' -K -
python3 - "$SOCKET" "$EXPECTED" <<'EOF' || fail "sobot.request over JSON-RPC did not answer status 200 with the expected body"
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(10)
sock.connect(sys.argv[1])
sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"sobot.request","params":{"tenant":"acme","path":"/api/ws/5/x","body":{}}}\n')
reply = json.loads(sock.makefile("rb").readline())
result = reply.get("result") or {}
ok = result.get("status") == 200 and result.get("body") == json.loads(sys.argv[2])
print("check: sobot.request over JSON-RPC -> status %s" % result.get("status") if ok else "unexpected reply: %s" % str(reply)[:300])
sys.exit(0 if ok else 1)
EOF

to_ms() { # wrk latency like 412.00us / 2.31ms / 1.02s / 3.00m -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# CPU time (clock ticks) of processes and their direct children (nginx's workers).
cpu_ticks() {
    local pid total=0
    for pid in "$@" $(for p in "$@"; do pgrep -P "$p" || true; done); do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat")))
    done
    echo "$total"
}

run_wrk() { # name server-pid url [wrk args...]: the server's CPU is measured over the run
    local name=$1 server=$2 url=$3 out before after cpu
    shift 3
    out="$TMP/wrk-$name.txt"
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$HERE/proxy/post.lua" "$@" "$url" >/dev/null \
        || fail "$name: wrk warm-up failed"
    before=$(cpu_ticks "$server")
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$HERE/proxy/post.lua" "$@" "$url" >"$out" \
        || fail "$name: wrk failed"
    after=$(cpu_ticks "$server")
    cpu=$(awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$DURATION" 'BEGIN {printf "%.0f", d / hz / s * 100}')
    echo "=== $name (server CPU ${cpu}% of one core; load averages after: $(load_averages))"
    redact <"$out"
    local rps p50 p99 non2xx errors
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    errors=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")
    [ -n "$rps" ] || fail "$name: no Requests/sec in wrk's output"
    printf -v "RPS_$name" '%s' "$rps"
    printf -v "P50_$name" '%s' "$p50"
    printf -v "P99_$name" '%s' "$p99"
    RESULTS+=("RESULT ${name}_requests_per_s $rps"
              "RESULT ${name}_p50_ms $p50"
              "RESULT ${name}_p99_ms $p99"
              "RESULT ${name}_non_2xx ${non2xx:-0}"
              "RESULT ${name}_socket_errors ${errors:-0}"
              "RESULT ${name}_server_cpu_percent $cpu")
}

RESULTS=()
run_wrk upstream_direct "$UPSTREAM_PID" "http://127.0.0.1:$UPSTREAM_PORT$API_PATH"
run_wrk nginx_proxy "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT$API_PATH"
PROXYBENCH_AUTH="$KEY" run_wrk broker_proxy "$BROKER_PID" "http://127.0.0.1:$BROKER_PORT$API_PATH" -H 'X-Sobot-Tenant: acme'

BEFORE=$(cpu_ticks "$BROKER_PID")
python3 "$HERE/proxy/jsonrpc_load.py" --socket "$SOCKET" --connections "$CONNECTIONS" \
    --processes "$JSONRPC_PROCESSES" --duration "$DURATION" --warmup "$WARMUP" >"$TMP/jsonrpc.json" \
    || fail "the JSON-RPC load generator failed"
J_CPU=$(awk -v d=$(($(cpu_ticks "$BROKER_PID") - BEFORE)) -v hz="$(getconf CLK_TCK)" -v s="$DURATION" -v w="$WARMUP" \
    'BEGIN {printf "%.0f", d / hz / (s + w + 0.5) * 100}')
echo "=== broker sobot.request over JSON-RPC (Python generator, $CONNECTIONS connections over $JSONRPC_PROCESSES processes; broker CPU ${J_CPU}% of one core incl. warm-up; load averages after: $(load_averages))"
cat "$TMP/jsonrpc.json"
read -r J_RPS J_P50 J_P99 J_ERR < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("%.2f %.3f %.3f %d" % (r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["errors"]))' "$TMP/jsonrpc.json")
RESULTS+=("RESULT jsonrpc_sobot_request_requests_per_s $J_RPS"
          "RESULT jsonrpc_sobot_request_p50_ms $J_P50"
          "RESULT jsonrpc_sobot_request_p99_ms $J_P99"
          "RESULT jsonrpc_sobot_request_errors $J_ERR"
          "RESULT jsonrpc_sobot_request_server_cpu_percent $J_CPU")

BROKER_RSS=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$BROKER_PID/status" 2>/dev/null || echo "?")
kill -0 "$BROKER_PID" 2>/dev/null || fail "the broker exited during the run"
if grep -qiE 'error|critical' "$TMP/broker.log"; then
    echo "note: the broker logged errors (last lines):"; grep -iE 'error|critical' "$TMP/broker.log" | tail -n 5 | redact
fi

RATIO=$(awk -v b="$RPS_broker_proxy" -v n="$RPS_nginx_proxy" 'BEGIN {printf "%.3f", b / n}')
ADDED=$(awk -v b="$P99_broker_proxy" -v u="$P99_upstream_direct" 'BEGIN {printf "%.3f", b - u}')
RATIO_MET=$(awk -v r="$RATIO" 'BEGIN {print (r >= 0.8) ? "met" : "not-met"}')
ADDED_MET=$(awk -v a="$ADDED" 'BEGIN {print (a < 2) ? "met" : "not-met"}')
LOAD_END=$(load_averages)

echo
echo "uptime at end: $(uptime)"
printf '%s\n' "${RESULTS[@]}"
echo "RESULT broker_rss_mib $BROKER_RSS"
echo "RESULT broker_over_nginx_throughput $RATIO"
echo "RESULT broker_over_nginx_throughput_target_ge_0.8 $RATIO_MET"
echo "RESULT broker_added_p99_ms $ADDED"
echo "RESULT broker_added_p99_target_lt_2ms $ADDED_MET"
echo "RESULT nproc $(nproc)"
echo "RESULT loadavg_start ${LOAD_START// /,}"
echo "RESULT loadavg_end ${LOAD_END// /,}"
