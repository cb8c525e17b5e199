#!/usr/bin/env bash
# After a crash: how long from the restart's first request to the last event delivered.
#
#   bench/kill-restart.sh [LOAD_SECONDS] [CONNECTIONS]
#
# Each run: the host serves the app with a receiver on loopback (bench/receiver.py, answering
# after RECEIVER_DELAY seconds, default 0.02, so deliveries are in flight); wrk deducts on 8
# products; halfway through, the host is killed with SIGKILL (notifier and all); it is
# started again on the same state and asked `GET /health` once, as a probe would. Then it
# waits for every event the database committed (its outbox) to reach the receiver, and
# prints how long that took after the request, and whether any was lost or invented.
# RUNS (default 3) runs; the median.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

LOAD=${1:-6}
CONNECTIONS=${2:-32}
RUNS=${RUNS:-3}
PORT=${PORT:-3927}
RECEIVER_PORT=${RECEIVER_PORT:-3928}
DELAY=${RECEIVER_DELAY:-0.02}

need_wrk
cargo build --release -p inventory-host -p inventory-dev-token --quiet
HOST=./target/release/inventory-host
"$HOST" build >/dev/null
token=$(./target/release/inventory-dev-token --sub bench)
base="http://127.0.0.1:$PORT"

up() {
  "$HOST" up --listen "127.0.0.1:$PORT" --state-dir "$1" --variable rate_limit_requests=1000000000 \
    --variable "order_events_urls=http://127.0.0.1:$RECEIVER_PORT/events" >>"$1/stdout.log" 2>>"$1/stderr.log" &
  host=$!
  for _ in $(seq 200); do curl -fs "$base/health" >/dev/null 2>&1 && return; sleep 0.05; done
  echo "the host did not start" >&2; exit 1
}

once() {
  local state; state=$(mktemp -d)
  python3 bench/receiver.py "$RECEIVER_PORT" "$DELAY" "$state/ids" >"$state/receiver.log" 2>&1 &
  receiver=$!
  up "$state"
  for i in $(seq 1 8); do
    curl -fs -X POST "$base/product" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
      -d "{\"name\": \"Crash $i\", \"price\": 1, \"stock\": 1000000000}" >/dev/null
  done
  cat >"$state/deduct.lua" <<'LUA'
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) n = 0 end
function request()
  n = n + 1
  local headers = { ["Content-Type"] = "application/json" }
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Idempotency-Key"] = "crash-" .. os.time() .. "-" .. tid .. "-" .. n
  return wrk.format("POST", "/product/" .. (n % 8 + 1) .. "/deduct", headers, '{"quantity": 1, "order_id": "crash"}')
end
LUA
  wrk -t2 -c"$CONNECTIONS" -d"${LOAD}s" -H "Authorization: Bearer $token" -s "$state/deduct.lua" "$base" >/dev/null 2>&1 &
  load=$!
  sleep "$(echo "$LOAD / 2" | bc -l)"
  kill -9 "$host"; wait "$host" 2>/dev/null || true
  # The load ends with the host; the restart follows at once.
  kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true
  local committed; committed=$(python3 -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); print(d.execute('SELECT count(DISTINCT event_id) FROM outbox').fetchone()[0])" "$state/sqlite_db.db")
  local before; before=$(cut -d' ' -f1 "$state/ids" | sort -u | wc -l)
  up "$state"
  local asked; asked=$(date +%s.%N)
  curl -fs "$base/health" >/dev/null
  local delivered=0 deadline=$((SECONDS + 60))
  while (( SECONDS < deadline )); do
    delivered=$(cut -d' ' -f1 "$state/ids" | sort -u | wc -l)
    (( delivered >= committed )) && break
    sleep 0.1
  done
  local last; last=$(sort -k2 -n "$state/ids" | tail -1 | cut -d' ' -f2)
  local first; first=$(awk -v t="$asked" '$2 > t { print $2 }' "$state/ids" | sort -n | awk 'NR == 1')
  local invented; invented=$(python3 - "$state/sqlite_db.db" "$state/ids" <<'PY'
import sqlite3, sys
known = {row[0] for row in sqlite3.connect(sys.argv[1]).execute("SELECT DISTINCT event_id FROM outbox")}
seen = {line.split()[0] for line in open(sys.argv[2])}
print(len(seen - known))
PY
)
  kill "$host" "$receiver" 2>/dev/null || true; wait "$host" "$receiver" 2>/dev/null || true
  printf '%.2f %.2f %s %s %s %s\n' "$(echo "$last - $asked" | bc -l)" "$(echo "${first:-$asked} - $asked" | bc -l)" \
    "$committed" "$((committed - before))" "$delivered" "$invented"
  rm -rf "$state"
}

echo "kill -9 under load (wrk -t2 -c$CONNECTIONS deducts, ${LOAD}s, killed halfway), receiver answering after ${DELAY}s"
times=()
for run in $(seq "$RUNS"); do
  read -r seconds resumed committed backlog delivered invented < <(once)
  printf 'run %s: delivery resumed %5s s and the last event arrived %5s s after the first request; %s events committed (%s not yet delivered at the kill), %s delivered, %s invented\n' \
    "$run" "$resumed" "$seconds" "$committed" "$backlog" "$delivered" "$invented"
  times+=("$seconds")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "median: %s s from the first request to the last event\n", a[int((NR + 1) / 2)] }'
