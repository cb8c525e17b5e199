#!/usr/bin/env bash
# Latency on one kept-alive connection (wrk -t1 -c1), for both builds of the app on the host:
# spin.toml (WASI 0.3, reused instances) and spin.wasip2.toml (WASI 0.2, an instance a
# request). Requests follow one another, so a response held back by Nagle's algorithm (the
# 40 ms delayed-ACK stall) shows in p50 and p99 at once.
#
#   bench/one-connection.sh [DURATION_SECONDS]
#
# Two requests each: the guarded read (GET /product/1) and a guarded write with a body
# (PATCH /product/1, a 300-byte description). Prints req/s, p50 and p99 for each.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${1:-8}
need_wrk
cargo build --release -p inventory-host -p inventory-dev-token --quiet
HOST=./target/release/inventory-host
"$HOST" build >/dev/null
"$HOST" build -f spin.wasip2.toml >/dev/null

state=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$state"' EXIT
declare -A port_of=([wasip3]=3961 [wasip2]=3962)
"$HOST" up --listen 127.0.0.1:3961 --state-dir "$state/wasip3" --from spin.toml \
  --variable rate_limit_requests=1000000000 >"$state/wasip3.log" 2>&1 &
pids+=($!)
"$HOST" up --listen 127.0.0.1:3962 --state-dir "$state/wasip2" --from spin.wasip2.toml \
  --variable rate_limit_requests=1000000000 >"$state/wasip2.log" 2>&1 &
pids+=($!)
for port in 3961 3962; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
token=$(./target/release/inventory-dev-token --sub bench)
auth="Authorization: Bearer $token"
description=$(printf 'x%.0s' $(seq 300))
cat >"$state/patch.lua" <<LUA
wrk.method = "PATCH"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"description": "$description"}'
LUA
for build in wasip3 wasip2; do
  port=${port_of[$build]}
  curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/product" -H "$auth" \
    -H 'content-type: application/json' -d '{"name": "One", "price": 1, "stock": 10}'
  read -r rps p50 p99 _ < <(wrk -t1 -c1 -d"${DURATION}s" --latency -H "$auth" \
    "http://127.0.0.1:$port/product/1" | wrk_figures)
  printf '%-7s GET /product/1    %6s req/s  p50 %s ms  p99 %s ms\n' "$build" "$rps" "$p50" "$p99"
  read -r rps p50 p99 _ < <(wrk -t1 -c1 -d"${DURATION}s" --latency -H "$auth" -s "$state/patch.lua" \
    "http://127.0.0.1:$port/product/1" | wrk_figures)
  printf '%-7s PATCH /product/1  %6s req/s  p50 %s ms  p99 %s ms\n' "$build" "$rps" "$p50" "$p99"
done
