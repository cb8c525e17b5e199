#!/usr/bin/env bash
# Benchmark: the host serving the real app, loaded with wrk over loopback.
#
#   bench/run.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Prints requests/s and latency percentiles, each run three times, with the median:
# GET /product/{id} through the whole pipeline (rate-limit counter increment + JWT
# verification + SQLite read + access log), GET /health (no guard: the bare component), and
# POST /product (the pipeline plus a write transaction), and stock deducts as the order
# service sends them (a fresh Idempotency-Key each, DEDUCT_CONNECTIONS connections): all on
# one hot product, and spread over 1,000 products at random. The rate limit is raised so
# that the load is counted but never refused.
#
# REDIS=1 keeps the rate-limit counters on a redis-server it starts (Debian package
# redis-server), as replicas share them, instead of the local key-value file.
#
# RECEIVER_DELAY=S sends the app's events to a receiver on loopback (bench/receiver.py) that
# answers after S seconds (0: at once); without it no receiver is configured. At the end the
# outbox's backlog is printed, and how much of it is left after DRAIN_SECONDS (default 30). wrk shares the machine's cores with the host, as in the
# reference figures (wrk -t2 -c32 on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${1:-10}
CONNECTIONS=${2:-32}
RUNS=${RUNS:-3}
DEDUCT_CONNECTIONS=${DEDUCT_CONNECTIONS:-64}
# Which benches to run: any of read, health, post, deduct-hot, deduct-random, hold-commit
# (checkouts on the hot product: a hold, then its commit), deduct-10-locations (deducts of
# one product stocked at 10 locations, `strategy: most_available`), health-under-deduct
# (GET /health on 4 connections while 64 deduct one hot product).
ONLY=${ONLY:-read,health,post,deduct-hot,deduct-random,hold-commit,deduct-10-locations,health-under-deduct}
PORT=${PORT:-3917}
RECEIVER_PORT=${RECEIVER_PORT:-3918}
REDIS_PORT=${REDIS_PORT:-3919}

need_wrk

# HOST=path benchmarks another build of the host (an A/B of one change) on the same wasm.
if [[ -z ${HOST:-} ]]; then
  cargo build --release -p inventory-host --quiet
  HOST=./target/release/inventory-host
fi
# Tokens come from the app's dev tool.
cargo build --release -p inventory-dev-token --quiet
DEV_TOKEN=./target/release/inventory-dev-token
"$HOST" build >/dev/null

state=$(mktemp -d)
events=()
receiver=
if [[ -n ${RECEIVER_DELAY:-} ]]; then
  python3 bench/receiver.py "$RECEIVER_PORT" "$RECEIVER_DELAY" >"$state/receiver.log" 2>&1 &
  receiver=$!
  events=(--variable "order_events_urls=http://127.0.0.1:$RECEIVER_PORT/events")
fi
# REDIS=1 keeps the rate-limit counters on a redis-server started here (as replicas would),
# instead of the local key-value file.
redis=
stores=()
if [[ -n ${REDIS:-} ]]; then
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$state/redis.log" 2>&1 &
  redis=$!
  printf '[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:%s"\n' "$REDIS_PORT" >"$state/runtime-config.toml"
  stores=(--runtime-config-file "$state/runtime-config.toml")
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break; sleep 0.1; done
fi
"$HOST" up --listen "127.0.0.1:$PORT" --state-dir "$state" "${stores[@]}" \
  --variable rate_limit_requests=1000000000 "${events[@]}" >"$state/stdout.log" 2>"$state/stderr.log" &
host=$!
trap 'kill $host $receiver $redis 2>/dev/null; wait $host $receiver $redis 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

base="http://127.0.0.1:$PORT"
token=$("$DEV_TOKEN" --sub bench)
auth="Authorization: Bearer $token"
products=100
[[ $ONLY == *deduct-random* ]] && products=1000
for i in $(seq 1 "$products"); do
  curl -fs -X POST "$base/product" -H "$auth" -H 'content-type: application/json' \
    -d "{\"name\": \"Bench $i\", \"price\": 12.5, \"stock\": 1000000000, \"sku\": \"BENCH-$i\"}" >/dev/null
done

cat >"$state/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name": "Load mug", "description": "350 ml", "price": 12.5, "stock": 40, "category_id": 3}'
LUA

write_deduct_lua "$state/deduct.lua"

# One product stocked at 10 locations (loc-1 to loc-10, 100,000,000 units each), deducted
# with `strategy: most_available`: every deduct reads its 10 levels and takes from the one
# with most left.
spread=
if [[ ,$ONLY, == *,deduct-10-locations,* ]]; then
  spread=$(curl -fs -X POST "$base/product" -H "$auth" -H 'content-type: application/json' \
    -d '{"name": "Spread", "price": 1, "stock": 0}' | sed 's/^{"id":\([0-9]*\).*/\1/')
  for i in $(seq 1 10); do
    curl -fs -X POST "$base/locations" -H "$auth" -H 'content-type: application/json' \
      -d "{\"id\": \"loc-$i\", \"name\": \"Location $i\", \"priority\": $i}" >/dev/null
    curl -fs -X PUT "$base/product/$spread/stock/loc-$i" -H "$auth" -H 'content-type: application/json' \
      -H 'if-none-match: *' -d '{"stock": 100000000}' >/dev/null
  done
  sed -e "s/local id = 42/local id = $spread/" \
    -e 's/{"quantity": 1, "order_id": "bench"}/{"quantity": 1, "order_id": "bench", "strategy": "most_available"}/' \
    "$state/deduct.lua" >"$state/deduct-spread.lua"
fi

# A checkout on the hot product: a hold of 1 (POST /reservations), then its commit; each
# connection commits the holds its thread made, so every request is one half of a pair.
cat >"$state/hold-commit.lua" <<'LUA'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
  holds = {}
end
function request()
  local headers = { ["Content-Type"] = "application/json" }
  for name, value in pairs(wrk.headers) do headers[name] = value end
  if #holds > 0 then
    local id = table.remove(holds, 1)
    return wrk.format("POST", "/reservations/" .. id .. "/commit", headers, nil)
  end
  n = n + 1
  headers["Idempotency-Key"] = "hold-" .. os.time() .. "-" .. tid .. "-" .. n
  return wrk.format("POST", "/reservations", headers,
    '{"order_id": "bench", "lines": [{"product_id": 42, "quantity": 1}]}')
end
function response(status, headers, body)
  if status == 201 then
    local id = body:match('"id":"(res_[0-9a-f]+)"')
    if id then table.insert(holds, id) end
  end
end
LUA

# One wrk run: prints "req/s p50_ms p99_ms".
run_wrk() {
  wrk -t2 -c"${WRK_CONNECTIONS:-$CONNECTIONS}" -d"${DURATION}s" --latency "$@" | wrk_figures
}

bench() {
  local name=$1; shift
  local results=()
  for _ in $(seq "$RUNS"); do results+=("$(run_wrk "$@")"); done
  printf '%s\n' "${results[@]}" >"$state/results"
  printf '%-28s req/s median %6s  (runs: %s)  p50 median %s ms  p99 median %s ms\n' "$name" \
    "$(cut -d' ' -f1 "$state/results" | median)" "$(cut -d' ' -f1 "$state/results" | paste -sd/)" \
    "$(cut -d' ' -f2 "$state/results" | median)" "$(cut -d' ' -f3 "$state/results" | median)"
}

echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s, $RUNS runs each, host: $HOST, counters: $([[ -n ${REDIS:-} ]] && echo "Redis" || echo "local file")"
[[ ,$ONLY, == *,read,* ]] && bench "GET /product/{id} (guarded)" -H "$auth" "$base/product/42"
[[ ,$ONLY, == *,health,* ]] && bench "GET /health (open)" "$base/health"
[[ ,$ONLY, == *,post,* ]] && bench "POST /product (guarded)" -H "$auth" -s "$state/post.lua" "$base/product"
[[ ,$ONLY, == *,deduct-hot,* ]] && WRK_CONNECTIONS=$DEDUCT_CONNECTIONS \
  bench "deduct, 1 hot product, c$DEDUCT_CONNECTIONS" -H "$auth" -s "$state/deduct.lua" "$base" -- 1
[[ ,$ONLY, == *,deduct-random,* ]] && WRK_CONNECTIONS=$DEDUCT_CONNECTIONS \
  bench "deduct, 1,000 random, c$DEDUCT_CONNECTIONS" -H "$auth" -s "$state/deduct.lua" "$base" -- 1000
[[ ,$ONLY, == *,deduct-10-locations,* ]] && WRK_CONNECTIONS=$DEDUCT_CONNECTIONS \
  bench "deduct, 10 locations, most_available, c$DEDUCT_CONNECTIONS" -H "$auth" -s "$state/deduct-spread.lua" "$base" -- 1
# Requests/s of holds and commits together: a checkout (hold + commit) is two of them.
[[ ,$ONLY, == *,hold-commit,* ]] && WRK_CONNECTIONS=$DEDUCT_CONNECTIONS \
  bench "hold+commit, 1 hot, c$DEDUCT_CONNECTIONS" -H "$auth" -s "$state/hold-commit.lua" "$base"
if [[ ,$ONLY, == *,health-under-deduct,* ]]; then
  # Does a flood of writes on one hot row stall requests that touch no database? wrk
  # deducts in the background while a second wrk measures /health.
  for _ in $(seq "$RUNS"); do
    wrk -t1 -c"$DEDUCT_CONNECTIONS" -d"$((DURATION + 2))s" -H "$auth" -s "$state/deduct.lua" "$base" -- 1 >"$state/deducts.txt" &
    load=$!
    sleep 1
    WRK_CONNECTIONS=4 run_wrk "$base/health" >>"$state/health-under-deduct"
    wait "$load"
    awk '/Requests\/sec/ { print $2 }' "$state/deducts.txt" >>"$state/deducts-under"
  done
  printf '%-28s req/s median %6s  p50 median %s ms  p99 median %s ms  (deducts meanwhile: %s req/s)\n' \
    "GET /health under deducts" "$(cut -d' ' -f1 "$state/health-under-deduct" | median)" \
    "$(cut -d' ' -f2 "$state/health-under-deduct" | median)" "$(cut -d' ' -f3 "$state/health-under-deduct" | median)" \
    "$(median <"$state/deducts-under")"
fi
if [[ -n $receiver ]]; then
  # The backlog the load left, and how long the notifier takes to drain it once the load
  # stops (POST /events/deliver kicks a pass in case no notifier is active).
  admin=$("$DEV_TOKEN" --sub bench --scope events:admin)
  pending_now() { curl -fs "$base/events?status=pending&limit=1" -H "Authorization: Bearer $admin" | sed 's/.*"total":\([0-9]*\).*/\1/'; }
  backlog=$(pending_now)
  start=$(date +%s.%N)
  deadline=$((SECONDS + ${DRAIN_SECONDS:-30}))
  while true; do
    left=$(pending_now)
    [[ $left == 0 || $SECONDS -ge $deadline ]] && break
    curl -fs -m 5 -X POST "$base/events/deliver" -H "Authorization: Bearer $admin" >/dev/null || true
    sleep 0.5
  done
  drained=$(echo "$(date +%s.%N) - $start" | bc)
  kill "$receiver"; wait "$receiver" 2>/dev/null || true; receiver=
  printf 'events: receiver answering after %ss; %s pending when the load stopped, %s left %.1f s later; %s\n' \
    "$RECEIVER_DELAY" "$backlog" "$left" "$drained" "$(tail -1 "$state/receiver.log")"
fi
true
