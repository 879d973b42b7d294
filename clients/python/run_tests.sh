#!/usr/bin/env bash
# Runs the Python client's tests against a real sobot-broker daemon fed by the built-in simulator.
#
#   bash clients/python/run_tests.sh path/to/sobot-broker
#
# Starts `BINARY simulate` on a free port, creates a temporary home, imports one tenant (acme/sg) and
# one whose key Sobot refuses (refused/sg),
# starts `BINARY serve`, runs the unittest suite with SOBOT_BROKER_SOCKET and SOBOT_SIMULATOR_URL
# set, stops everything and exits with the tests' status. PYTHON (default python3) and
# PYTHON_FLAGS (e.g. "-W error") choose the interpreter and its options.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 path/to/sobot-broker" >&2
    exit 64
fi
binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [[ ! -x $binary ]]; then
    echo "$0: $1 is not an executable" >&2
    exit 64
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
read -r -a python_flags <<<"${PYTHON_FLAGS:-}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sb-python.XXXXXX")
simulator_pid=""
serve_pid=""
cleanup() {
    local status=$?
    if [[ -n $serve_pid ]] && kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
    fi
    if [[ -n $simulator_pid ]] && kill -0 "$simulator_pid" 2>/dev/null; then
        kill -TERM "$simulator_pid" 2>/dev/null || true
        wait "$simulator_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tenants=$tmp/tenants.json
cat >"$tenants" <<'JSON'
{"tenants":[{"id":"acme","name":"Acme Travel","credentials":[{"region":"sg","appid":"1","app_key":"2"}]}]}
JSON

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$binary" simulate --port "$port" --token-ttl 3600 --tenants-file "$tenants" --log-level warning >"$tmp/simulate.log" 2>&1 &
simulator_pid=$!

export SOBOT_BROKER_HOME=$tmp/home
export SOBOT_BROKER_REGION_URLS="sg=http://127.0.0.1:$port"
export SOBOT_BROKER_SOCKET=$SOBOT_BROKER_HOME/broker.sock
export SOBOT_SIMULATOR_URL="http://127.0.0.1:$port"
unset SOBOT_BROKER_DATABASE_URL SOBOT_BROKER_CONFIG SOBOT_BROKER_MASTER_KEY_FILE SOBOT_BROKER_MODULES

# The simulator must answer before the broker fetches its first token.
for _ in $(seq 1 100); do
    if "$python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$port" 2>/dev/null; then
        break
    fi
    kill -0 "$simulator_pid" 2>/dev/null || { echo "$0: the simulator exited:" >&2; cat "$tmp/simulate.log" >&2; exit 1; }
    sleep 0.1
done

"$binary" init >"$tmp/init.log"
"$binary" tenant import "$tenants" >"$tmp/import.log"
# A second tenant whose key the simulator does not accept: Sobot's refusal (900003) reaches the client.
printf 'not-the-key\n' | "$binary" tenant add refused --region sg --appid 1 --app-key-stdin >>"$tmp/import.log"

"$binary" serve --log-level warning >"$tmp/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
    [[ -S $SOBOT_BROKER_SOCKET ]] && break
    kill -0 "$serve_pid" 2>/dev/null || { echo "$0: serve exited:" >&2; cat "$tmp/serve.log" >&2; exit 1; }
    sleep 0.1
done
if [[ ! -S $SOBOT_BROKER_SOCKET ]]; then
    echo "$0: no socket at $SOBOT_BROKER_SOCKET after 10 s" >&2
    cat "$tmp/serve.log" >&2
    exit 1
fi

status=0
(cd "$here/../.." && "$python" ${python_flags[@]+"${python_flags[@]}"} -m unittest discover -s clients/python/tests -v) || status=$?
if [[ $status -ne 0 ]]; then
    echo "--- serve log" >&2; tail -n 50 "$tmp/serve.log" >&2 || true
    echo "--- simulate log" >&2; tail -n 50 "$tmp/simulate.log" >&2 || true
fi
exit "$status"
