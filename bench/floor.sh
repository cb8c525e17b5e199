#!/usr/bin/env bash
# What Spin's model costs before the app does anything: the host serving a component that
# only answers (tests/fixtures/hello, `GET /`: a fresh instance, one variable read, no guard,
# no SQLite, no log line; and tests/fixtures/reuse, `GET /`: a WASI 0.3 component answering
# on a reused instance) beside bench/native answering the same (`GET /empty`), and both
# doing the whole guarded read (token, rate-limit counter, product read, log line). What is
# left after the floor is the app's own work on each side.
# Rounds alternate, wrk -t2 with 32 connections shares the 2 cores; each round prints
# req/s, p50, p99 and the server's CPU time per request, then the medians.
#
#   bench/floor.sh [DURATION_SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${1:-8}
ROUNDS=${2:-3}
need_wrk
cargo build --release -p inventory-host -p inventory-dev-token --quiet
cargo build --release --quiet --manifest-path bench/native/Cargo.toml --target-dir target/bench-native
HOST=./target/release/inventory-host
"$HOST" build >/dev/null
"$HOST" build --from tests/fixtures/hello/spin.toml >/dev/null
"$HOST" build --from tests/fixtures/reuse/spin.toml >/dev/null

state=$(mktemp -d)
pids=()
declare -A pid_of url_of
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$state"' EXIT
"$HOST" up --listen 127.0.0.1:3971 --state-dir "$state/empty" --from tests/fixtures/hello/spin.toml \
  >"$state/empty.log" 2>&1 &
pids+=($!) pid_of[empty-host]=$! url_of[empty-host]=http://127.0.0.1:3971/
"$HOST" up --listen 127.0.0.1:3974 --state-dir "$state/empty3" --from tests/fixtures/reuse/spin.toml \
  >"$state/empty3.log" 2>&1 &
pids+=($!) pid_of[empty-host-p3]=$! url_of[empty-host-p3]=http://127.0.0.1:3974/
ADDR=127.0.0.1:3972 DB="$state/native.db" target/bench-native/release/bench-native >"$state/native.log" 2>&1 &
pids+=($!) pid_of[read-native]=$! url_of[read-native]=http://127.0.0.1:3972/product/42
pid_of[empty-native]=$! url_of[empty-native]=http://127.0.0.1:3972/empty
"$HOST" up --listen 127.0.0.1:3973 --state-dir "$state/read" \
  --variable rate_limit_requests=1000000000 >"$state/read.log" 2>&1 &
pids+=($!) pid_of[read-host]=$! url_of[read-host]=http://127.0.0.1:3973/product/42
for port in 3971 3972 3973 3974; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
token=$(./target/release/inventory-dev-token --sub bench)
for i in $(seq 1 50); do
  curl -fs -o /dev/null -X POST http://127.0.0.1:3973/product -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' -d "{\"name\": \"Bench $i\", \"price\": 12.5, \"stock\": 1000000000}"
done

sides="empty-host empty-host-p3 empty-native read-host read-native"
echo "wrk -t2 -c32, ${DURATION}s rounds, $ROUNDS rounds a side, alternating"
for r in $(seq "$ROUNDS"); do
  for side in $sides; do
    read -r rps p50 p99 cpu < <(wrk_with_cpu "${pid_of[$side]}" -t2 -c32 -d"${DURATION}s" \
      --latency -H "Authorization: Bearer $token" "${url_of[$side]}")
    echo "$rps $cpu" >>"$state/$side"
    printf 'round %d  %-13s %6s req/s  p50 %s ms  p99 %s ms  CPU %s us/req\n' "$r" "$side" "$rps" "$p50" "$p99" "$cpu"
  done
done
for side in $sides; do
  printf 'median    %-13s %6s req/s  CPU %s us/req\n' "$side" \
    "$(cut -d' ' -f1 "$state/$side" | median)" "$(cut -d' ' -f2 "$state/$side" | median)"
done
