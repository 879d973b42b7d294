#!/usr/bin/env bash
# cluster.sh: benchmark figures for cluster mode (several `sobot-broker serve` on one PostgreSQL).
#
# usage: bench/cluster.sh [BINARY]        (default .build-bench/release/sobot-broker)
#   N=100000        tenants                     B=3        brokers
#   STEADY=300      steady-state seconds        TTL=60     simulator token lifetime
#   RATE=2000 CONC=32   --background-rate / --background-concurrency of every broker
#   COMPARE=1       run /work/shared/bench/compare.sh (5 s) against broker 1 and a SQLite broker
#   FAILOVER=1      kill -9 one broker under slow upstream and time the takeover of its leases
#   KEEP=1          keep the temp dir (logs) afterwards      ACQ_TIMEOUT=900  seconds to wait for tokens_valid = N
#   DUPLOG=1        log every stored generation (a trigger on credentials, one insert per refresh) to count
#                   duplicates: a stored token whose issued_at is less than TTL/2 - 1 s after the key's previous one
# Needs root (PostgreSQL runs as the postgres user via setpriv), jq, curl, python3, gcc, redis-server.
# Prints `RESULT name value` lines (also in $WORK/results.txt) and progress on stderr.
# Never prints an app key or a token.
set -euo pipefail

BIN=$(readlink -f "${1:-.build-bench/release/sobot-broker}")
N=${N:-100000} B=${B:-3} STEADY=${STEADY:-300} TTL=${TTL:-60}
RATE=${RATE:-2000} CONC=${CONC:-32} COMPARE=${COMPARE:-1} FAILOVER=${FAILOVER:-1} DUPLOG=${DUPLOG:-1}
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/sobot-cluster.XXXXXX)
chmod 755 "$WORK"
RESULTS=$WORK/results.txt
: >"$RESULTS"
pids=()

loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/'; }
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
result() { printf 'RESULT %s %s\n' "$1" "$2" | tee -a "$RESULTS"; }
now() { date +%s.%N; }
elapsed() { $PY -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$1" "$2"; }
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- PostgreSQL
PGPORT=$(free_port)
PGDIR=$WORK/pg
mkdir -p "$PGDIR" && chown postgres:postgres "$PGDIR" && chmod 700 "$PGDIR"
asPG=(setpriv --reuid=postgres --regid=postgres --init-groups)
"${asPG[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust >"$WORK/initdb.log" 2>&1
nohup "${asPG[@]}" "$PGBIN/postgres" -D "$PGDIR/data" -c listen_addresses=127.0.0.1 -p "$PGPORT" \
  -c fsync=off -c max_connections=300 -c unix_socket_directories="$PGDIR" >"$WORK/postgres.log" 2>&1 </dev/null &
pids+=($!)
for _ in $(seq 100); do "$PGBIN/pg_isready" -U postgres -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.1; done
"$PGBIN/pg_isready" -U postgres -q -h 127.0.0.1 -p "$PGPORT" || { log "postgres did not start"; cat "$WORK/postgres.log" >&2; exit 1; }
PGPID=${pids[-1]}
sql() { psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -Atq -c "$1"; }
result "nproc" "$(nproc)"
result "loadavg_1/5/15_at_start" "$(loadavg)"
log "postgres on 127.0.0.1:$PGPORT"

# ---------------------------------------------------------------- tenants and simulator
$PY - "$N" "$WORK/tenants.json" "$WORK/simtenants.json" "$WORK/one.json" "$WORK/calib.env" <<'PY'
import json, secrets, sys, os
n, brokerfile, simfile, onefile, calib = int(sys.argv[1]), *sys.argv[2:]
tenants = [{"id": f"t{i:07d}", "name": f"Tenant {i}", "credentials": [
    {"region": "sg", "appid": str(1000000 + i), "app_key": secrets.token_hex(16)}]} for i in range(1, n + 1)]
cal = {"id": "calib", "credentials": [{"region": "sg", "appid": "999", "app_key": secrets.token_hex(16)}]}
for path, doc in ((brokerfile, tenants), (simfile, tenants + [cal]), (onefile, tenants[:1])):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f: json.dump({"tenants": doc}, f)
fd = os.open(calib, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f: f.write(f"CAL_APPID=999\nCAL_KEY={cal['credentials'][0]['app_key']}\n")
PY
SIMPORT=$(free_port)
nohup "$BIN" simulate --port "$SIMPORT" --token-ttl "$TTL" --tenants-file "$WORK/simtenants.json" --log-level warning \
  >"$WORK/simulator.log" 2>&1 </dev/null &
SIMPID=$!; pids+=($SIMPID)
SIM2PORT=$(free_port)   # a second simulator for the SQLite broker, so it never revokes the cluster's token
nohup "$BIN" simulate --port "$SIM2PORT" --token-ttl "$TTL" --tenants-file "$WORK/one.json" --log-level warning \
  >"$WORK/simulator2.log" 2>&1 </dev/null &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$SIMPORT/" && curl -s -o /dev/null "http://127.0.0.1:$SIM2PORT/" && break; sleep 0.1; done
log "simulator on 127.0.0.1:$SIMPORT ($N tenants, token ttl $TTL s), pid $SIMPID"

# The simulate process exposes no request count (only the in-process SobotSimulator does), so get_token
# calls are counted by the brokers' own metrics (upstream calls to /api/get_token, every outcome) and
# compared with the generations PostgreSQL stored.

# ---------------------------------------------------------------- homes, schema, import
export SOBOT_BROKER_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
export SOBOT_BROKER_REGION_URLS="sg=http://127.0.0.1:$SIMPORT"
home() { echo "$WORK/home$1"; }
"$BIN" init --home "$(home 1)" >/dev/null
for i in $(seq 2 "$B"); do
  mkdir -p "$(home "$i")" && chmod 700 "$(home "$i")"
  install -m 600 "$(home 1)/master.key" "$(home "$i")/master.key"
  "$BIN" init --home "$(home "$i")" >/dev/null
done
t0=$(now)
/usr/bin/time -f '%e s %M KiB' -o "$WORK/import.time" "$BIN" tenant import "$WORK/tenants.json" --home "$(home 1)" >"$WORK/import.out"
t1=$(now)
result import_seconds "$(elapsed "$t0" "$t1")"
result import_peak_rss_kib "$(awk '{print $3}' "$WORK/import.time")"
if [ "$DUPLOG" = 1 ]; then
  # Every stored generation, with the issued_at the broker stored: two consecutive ones for a key less than
  # TTL/2 - 1 s apart mean a get_token before the key's refresh window (a duplicate). A fetched token that was
  # never stored shows as get_token calls > stored generations instead.
  sql "CREATE TABLE bench_refresh_log (tenant_id text, region text, generation bigint, issued_at float8, at timestamptz, refreshed_by text)"
  sql "CREATE FUNCTION bench_log_refresh() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN
         INSERT INTO bench_refresh_log VALUES (NEW.tenant_id, NEW.region, NEW.generation, NEW.issued_at, clock_timestamp(), NEW.refreshed_by);
         RETURN NULL; END \$\$"
  sql "CREATE TRIGGER bench_refresh_log AFTER UPDATE OF generation ON credentials FOR EACH ROW
         WHEN (NEW.generation <> OLD.generation) EXECUTE FUNCTION bench_log_refresh()"
fi
# gap_stats FROM TO (epoch seconds; rows stored in that window): duplicates, late (gap > TTL) and the refresh
# point as a fraction of the previous token's lifetime
gap_stats() {
  sql "WITH g AS (SELECT at, issued_at - lag(issued_at) OVER (PARTITION BY tenant_id, region ORDER BY generation) AS gap FROM bench_refresh_log),
       w AS (SELECT gap FROM g WHERE gap IS NOT NULL AND at >= to_timestamp($1) AND at < to_timestamp($2))
       SELECT count(*) FILTER (WHERE gap < $TTL * 0.5 - 1), count(*) FILTER (WHERE gap > $TTL), count(*),
              round(coalesce(min(gap), 0)::numeric / $TTL, 3), round(coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY gap), 0)::numeric / $TTL, 3),
              round(coalesce(max(gap), 0)::numeric / $TTL, 3) FROM w" | tr '|' ' '
}
# CPU seconds (user+system) of a pid; postgres: the postmaster, its live backends and the ones it reaped
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_pg() {
  { awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / t }' "/proc/$PGPID/stat"
    for c in $(pgrep -P "$PGPID"); do cpu_of "$c"; done; } | awk '{ s += $1 } END { printf "%.2f\n", s }'
}
log "import: $(tail -1 "$WORK/import.out")"

# ---------------------------------------------------------------- brokers
BPID=()
health() { "$BIN" call broker.health --home "$1" 2>>"$WORK/health.err"; }
tokens_valid() { local o; o=$(health "$1") || { echo ERR; return; }; jq -r '.tokens_valid // empty' <<<"$o" 2>/dev/null; }
start_broker() { # i -> sets BPID[i], logs to home/serve.log
  local h; h=$(home "$1")
  nohup "$BIN" serve --home "$h" --log-level warning --background-rate "$RATE" --background-concurrency "$CONC" \
    >>"$WORK/serve$1.log" 2>&1 </dev/null &
  BPID[$1]=$!; pids+=($!)
}
wait_health() { # home timeout -> prints seconds until broker.health answers
  local h=$1 limit=$2 s; s=$(now)
  while ! health "$h" >/dev/null; do
    sleep 0.02
    [ "$(elapsed "$s" "$(now)" | cut -d. -f1)" -lt "$limit" ] || return 1
  done
}
wait_valid() { # home want timeout [poll-seconds]
  local h=$1 want=$2 limit=$3 poll=${4:-0.05} s v; s=$(now)
  while :; do
    v=$(tokens_valid "$h"); [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge "$want" ] && return 0
    [ "$(elapsed "$s" "$(now)" | cut -d. -f1)" -lt "$limit" ] || { log "tokens_valid=$v after $limit s at $h"; return 1; }
    sleep "$poll"
  done
}
metric_sum() { # home metric-regex -> sum of matching Prometheus samples
  "$BIN" call broker.metrics --home "$1" 2>/dev/null | $PY -c '
import json, re, sys
raw = sys.stdin.read(); pat = re.compile(sys.argv[1])
try:
    doc = json.loads(raw)
    text = doc if isinstance(doc, str) else next((v for v in doc.values() if isinstance(v, str)), "") if isinstance(doc, dict) else ""
except Exception:
    text = raw
total = 0.0
for line in text.splitlines():
    if line.startswith("#") or not pat.search(line.rsplit(" ", 1)[0]): continue
    total += float(line.rsplit(" ", 1)[1])
print(int(total))' "$2"
}
FETCH_RE='^sobot_broker_token_fetches_total\{.*outcome="ok"'
CALLS_RE='^sobot_broker_upstream_call_seconds_count\{.*endpoint="/api/get_token"'

gen_sum() { sql "SELECT coalesce(sum(generation),0) FROM credentials"; }
commits() { sql "SELECT xact_commit FROM pg_stat_database WHERE datname='postgres'"; }
unservable() { sql "SELECT count(*) FROM credentials WHERE token IS NULL OR expires_at IS NULL OR expires_at <= extract(epoch FROM now())"; }

gen0=$(gen_sum)
tstart=$(now)
for i in $(seq "$B"); do start_broker "$i"; done
w=()
for i in $(seq "$B"); do
  ( wait_health "$(home "$i")" 60 && elapsed "$tstart" "$(now)" >"$WORK/up$i" ) & w+=($!)
done
for j in "${w[@]}"; do wait "$j" || true; done
for i in $(seq "$B"); do result "broker${i}_start_to_health_seconds(cold,${N}_tenants,no_tokens)" "$(cat "$WORK/up$i" 2>/dev/null || echo timeout)"; done
log "brokers up; initial acquisition of $N tokens"
# sample every 5 s while acquiring
w=()
for i in $(seq "$B"); do
  ( wait_valid "$(home "$i")" "$N" "${ACQ_TIMEOUT:-900}" 0.5 && elapsed "$tstart" "$(now)" >"$WORK/full$i" ) & w+=($!)
done
( while [ ! -e "$WORK/acq.done" ]; do
    printf '%s gens=%s valid=' "$(elapsed "$tstart" "$(now)")" "$(gen_sum)"
    for i in $(seq "$B"); do printf '%s,' "$(tokens_valid "$(home "$i")")"; done; echo
    sleep 5; done >"$WORK/acquisition.trace" ) &
tracer=$!
for j in "${w[@]}"; do wait "$j" || true; done
touch "$WORK/acq.done"; wait "$tracer" 2>/dev/null || true
for i in $(seq "$B"); do result "broker${i}_initial_acquisition_seconds(to_tokens_valid=${N})" "$(cat "$WORK/full$i" 2>/dev/null || echo timeout)"; done
gen1=$(gen_sum)
result initial_generations_stored "$((gen1 - gen0))"
fetch_sum=0 call_sum=0
for i in $(seq "$B"); do
  f=$(metric_sum "$(home "$i")" "$FETCH_RE"); c=$(metric_sum "$(home "$i")" "$CALLS_RE")
  result "broker${i}_initial_fetches_ok" "$f"; result "broker${i}_initial_get_token_calls" "$c"
  fetch_sum=$((fetch_sum + f)); call_sum=$((call_sum + c))
done
result initial_fetches_ok_all_brokers "$fetch_sum"
result initial_get_token_calls_all_brokers "$call_sum"
if [ "$DUPLOG" = 1 ]; then
  read -r d l n _ <<<"$(gap_stats 0 "$(now)")"
  result "initial_duplicates(stored_token_less_than_TTL/2-1s_after_previous)" "$d"
fi
cat "$WORK/acquisition.trace" >&2

# ---------------------------------------------------------------- restart one broker at N tenants
victim=$B
kill -TERM "${BPID[$victim]}"; wait "${BPID[$victim]}" 2>/dev/null || true
trs=$(now); start_broker "$victim"
wait_health "$(home "$victim")" 60 && result "restart_exec_to_health_seconds(${N}_tenants_postgres)" "$(elapsed "$trs" "$(now)")"
wait_valid "$(home "$victim")" "$N" 120 && result "restart_exec_to_tokens_valid_N_seconds(${N}_tenants_postgres)" "$(elapsed "$trs" "$(now)")"

# ---------------------------------------------------------------- steady state
log "steady state for $STEADY s"
sg0=$(gen_sum); sc0=$(commits); st0=$(now)
result "loadavg_1/5/15_at_steady_start" "$(loadavg)"
declare -A cpu0; for i in $(seq "$B"); do cpu0[b$i]=$(cpu_of "${BPID[$i]}"); done
cpu0[sim]=$(cpu_of "$SIMPID"); cpu0[pg]=$(cpu_pg)
( sleep $((STEADY / 2 + 30)); { uptime; top -b -n 1 -w 200 | head -25; } >"$WORK/steady.top" ) &
topper=$!
declare -A sf0 sc0m; for i in $(seq "$B"); do sf0[$i]=$(metric_sum "$(home "$i")" "$FETCH_RE"); sc0m[$i]=$(metric_sum "$(home "$i")" "$CALLS_RE"); done
( while :; do
    printf '%s unservable_in_db=%s valid=' "$(elapsed "$st0" "$(now)")" "$(unservable)"
    for i in $(seq "$B"); do printf '%s,' "$(tokens_valid "$(home "$i")")"; done; echo
    sleep 10; done >"$WORK/steady.trace" ) &
sampler=$!
if [ "$COMPARE" = 1 ]; then
  # a SQLite broker (own home, no database URL, its own simulator), the same tenant id
  sq=$WORK/homesq; mkdir -p "$sq"; chmod 700 "$sq"
  ( unset SOBOT_BROKER_DATABASE_URL; export SOBOT_BROKER_REGION_URLS="sg=http://127.0.0.1:$SIM2PORT"
    "$BIN" init --home "$sq" >/dev/null && "$BIN" tenant import "$WORK/one.json" --home "$sq" >/dev/null
    nohup "$BIN" serve --home "$sq" --log-level warning >"$WORK/servesq.log" 2>&1 </dev/null & echo $! >"$WORK/sq.pid" )
  pids+=("$(cat "$WORK/sq.pid")")
  ( unset SOBOT_BROKER_DATABASE_URL; wait_valid "$sq" 1 30 )
  sleep 20
  log "compare.sh against cluster broker 1 ($N tenants, refreshing)"
  bash /work/shared/bench/compare.sh "$(home 1)/broker.sock" t0000001 sg 5 >"$WORK/compare-cluster.txt" 2>&1 || true
  log "compare.sh against the SQLite broker (1 tenant)"
  bash /work/shared/bench/compare.sh "$sq/broker.sock" t0000001 sg 5 >"$WORK/compare-sqlite.txt" 2>&1 || true
  kill "$(cat "$WORK/sq.pid")" 2>/dev/null || true
  for f in cluster sqlite; do sed "s/^/compare-$f: /" "$WORK/compare-$f.txt" | tee -a "$RESULTS"; done
fi
rest=$(( STEADY - $(elapsed "$st0" "$(now)" | cut -d. -f1) )); [ "$rest" -gt 0 ] && sleep "$rest"
sg1=$(gen_sum); sc1=$(commits); st1=$(now)
result "loadavg_1/5/15_at_steady_end" "$(loadavg)"
declare -A cpu1; for i in $(seq "$B"); do cpu1[b$i]=$(cpu_of "${BPID[$i]}"); done
cpu1[sim]=$(cpu_of "$SIMPID"); cpu1[pg]=$(cpu_pg)
kill "$sampler" "$topper" 2>/dev/null || true
secs=$(elapsed "$st0" "$st1")
result steady_seconds "$secs"
result steady_generations_stored "$((sg1 - sg0))"
ssum=0 csum=0
for i in $(seq "$B"); do
  f=$(( $(metric_sum "$(home "$i")" "$FETCH_RE") - ${sf0[$i]} )); c=$(( $(metric_sum "$(home "$i")" "$CALLS_RE") - ${sc0m[$i]} ))
  result "broker${i}_steady_fetches_ok" "$f"; result "broker${i}_steady_get_token_calls" "$c"
  ssum=$((ssum + f)); csum=$((csum + c))
done
result steady_fetches_ok_all_brokers "$ssum"
result steady_get_token_calls_all_brokers "$csum"
result steady_refreshes_per_second "$($PY -c "print(f'{($sg1-$sg0)/$secs:.1f}')")"
result steady_pg_commits_per_second "$($PY -c "print(f'{($sc1-$sc0)/$secs:.1f}')")"
for k in "${!cpu1[@]}"; do
  result "steady_cpu_cores_${k}" "$($PY -c "print(f'{(${cpu1[$k]}-${cpu0[$k]})/$secs:.2f}')")"
done
if [ "$DUPLOG" = 1 ]; then
  read -r d l n mn md mx <<<"$(gap_stats "$st0" "$st1")"
  result "steady_duplicates(stored_token_less_than_TTL/2-1s_after_previous)" "$d"
  result "steady_late_refreshes(gap_over_TTL)" "$l"
  result "steady_refresh_point_min/median/max_of_lifetime" "$mn/$md/$mx"
fi
[ -s "$WORK/steady.top" ] && cat "$WORK/steady.top" >&2
result steady_max_unservable_in_db "$(sed 's/.*unservable_in_db=\([0-9]*\).*/\1/' "$WORK/steady.trace" | sort -n | tail -1)"
cat "$WORK/steady.trace" >&2
for i in $(seq "$B"); do result "broker${i}_tokens_valid_end" "$(tokens_valid "$(home "$i")")"; done
for i in $(seq "$B"); do result "broker${i}_rss_kib_end" "$(ps -o rss= -p "${BPID[$i]}" | tr -d ' ')"; done
for i in $(seq "$B"); do result "broker${i}_refreshed_rows" "$(sql "SELECT count(*) FROM credentials c JOIN brokers b ON c.refreshed_by = b.id WHERE b.pid = ${BPID[$i]}")"; done

# ---------------------------------------------------------------- failover
if [ "$FAILOVER" = 1 ]; then
  v=1; vpid=${BPID[$v]}
  log "failover: slow upstream (latency 2000 ms), then kill -9 broker $v (pid $vpid)"
  curl -s -o /dev/null "http://127.0.0.1:$SIMPORT/_simulator/fault?fault=latency:2000"
  sleep 3
  kill -9 "$vpid"; tk=$(now)
  sql "CREATE TABLE bench_orphans AS SELECT tenant_id, region, generation FROM credentials WHERE lease_owner LIKE '%-$vpid-%' AND lease_until > now()"
  curl -s -o /dev/null "http://127.0.0.1:$SIMPORT/_simulator/fault?fault=none"
  orphans=$(sql "SELECT count(*) FROM bench_orphans")
  result failover_leases_held_by_killed_broker "$orphans"
  maxu=0
  while :; do
    left=$(sql "SELECT count(*) FROM bench_orphans o JOIN credentials c USING (tenant_id, region) WHERE c.generation <= o.generation")
    u=$(unservable); [ "$u" -gt "$maxu" ] && maxu=$u
    echo "$(elapsed "$tk" "$(now)") orphans_left=$left unservable_in_db=$u" >>"$WORK/failover.trace"
    [ "$left" = 0 ] && break
    [ "$(elapsed "$tk" "$(now)" | cut -d. -f1)" -lt 120 ] || break
    sleep 0.5
  done
  result "failover_kill9_to_all_orphaned_keys_refreshed_seconds" "$(elapsed "$tk" "$(now)")"
  result failover_orphans_left "$left"
  result failover_max_unservable_in_db "$maxu"
  result failover_refreshed_by "$(sql "SELECT string_agg(DISTINCT split_part(c.refreshed_by, '-', 2), ',') FROM bench_orphans o JOIN credentials c USING (tenant_id, region)")"
  tail -3 "$WORK/failover.trace" >&2
  sleep 15
  for i in $(seq 2 "$B"); do result "broker${i}_tokens_valid_after_failover" "$(tokens_valid "$(home "$i")")"; done
  result after_failover_unservable_in_db "$(unservable)"
fi

# ---------------------------------------------------------------- logs
for f in "$WORK"/serve*.log "$WORK"/simulator*.log; do
  n=$(grep -c . "$f" || true); result "log_lines_$(basename "$f")" "$n"
  [ "$n" -gt 0 ] && { log "--- $f (first 10 lines)"; head -10 "$f" >&2; }
done
grep -E 'ERROR|FATAL' "$WORK/postgres.log" | head -5 >&2 || true
if [ "$DUPLOG" = 1 ]; then
  read -r d l n _ <<<"$(gap_stats 0 "$(now)")"
  result "whole_run_duplicates(stored_token_less_than_TTL/2-1s_after_previous)" "$d"
  result whole_run_stored_refreshes_checked "$n"
fi
log "done; results in $RESULTS"
