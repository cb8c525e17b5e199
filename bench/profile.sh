#!/usr/bin/env bash
# Where the host's time goes under the guarded-read load: perf (Debian linux-perf) records the
# host while wrk loads GET /product/42 (32 connections), with Wasmtime's perf map naming the
# compiled wasm functions, and bench/profile-groups.py charges each sample to what it was
# doing (instantiation, wasm code, SQLite, key-value, WASI, HTTP, the blocking pool...).
#
#   bench/profile.sh [SECONDS] [GROUPS_TO_DETAIL]
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_RECORDED=${1:-8}
PORT=${PORT:-3941}
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
cargo build --release -p inventory-host -p inventory-dev-token --quiet
HOST=${HOST:-./target/release/inventory-host}
"$HOST" build >/dev/null
state=$(mktemp -d)
"$HOST" up --listen "127.0.0.1:$PORT" --state-dir "$state" --profile perfmap \
  --variable rate_limit_requests=1000000000 >"$state/out.log" 2>&1 &
host=$!
trap 'kill $host 2>/dev/null; wait $host 2>/dev/null; rm -rf "$state" /tmp/perf-$host.map' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
token=$(./target/release/inventory-dev-token --sub bench)
for i in $(seq 1 50); do
  curl -fs -o /dev/null -X POST "http://127.0.0.1:$PORT/product" -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' -d "{\"name\": \"Bench $i\", \"price\": 12.5, \"stock\": 1000000000}"
done
wrk -t2 -c32 -d"$((SECONDS_RECORDED + 4))s" -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/product/42" >"$state/wrk.txt" &
load=$!
sleep 2
perf record -F 499 --call-graph dwarf,16384 -p "$host" -o "$state/perf.data" -- sleep "$SECONDS_RECORDED" 2>/dev/null
wait "$load"
grep Requests/sec "$state/wrk.txt"
perf script -i "$state/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null | python3 bench/profile-groups.py "${2:-5}"
