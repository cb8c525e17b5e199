#!/usr/bin/env bash
# The host serving the app, side by side with the same service written natively
# (bench/native: axum + rusqlite doing the same work per request), on this machine, in one
# run: wrk rounds alternate between the sides, so all see the same noise. Three sides:
#   host    the app's WASI 0.3 build (spin.toml): instances reused across requests
#   wasip2  its WASI 0.2 build (spin.wasip2.toml) on the same host: an instance a request
#   native  bench/native
#
#   bench/side-by-side.sh [DURATION_SECONDS] [ROUNDS]
#
# Two loads, each ROUNDS (default 3) times per side, DURATION (default 8) seconds a round:
#   read    guarded GET /product/42, 32 connections (token, rate-limit counter, read, log line)
#   deduct  POST /product/42/deduct with a fresh Idempotency-Key each, 64 connections (the
#           durable write transaction: synchronous=FULL on both sides)
# Prints every round, then the medians and host/native: of throughput, and of the server's
# CPU time per request (read from /proc; wrk's own CPU and idle time left out, so the least
# noisy figure on a shared machine). Both sides get 1,000 products with
# a stock of 1,000,000,000 and a rate limit that counts but never refuses; wrk -t2 shares the
# cores with the server, as in every figure of the README.
#
# HOST=path measures another build of the host on the same wasm; BEFORE=path adds a third
# side, another build (the commit before a change), to every round: an A/B in the same run.
# BEFORE_MANIFEST=path runs that side from another spin.toml (other wasm, same host: an A/B
# of the components). ONLY=read or ONLY=deduct runs one load. UP_ARGS adds arguments to
# every host's `up` (`--max-instance-concurrent-reuse-count 4`, say). SIDES="host before"
# loads only those sides (more rounds in the same time, for an A/B); with a before side, the
# medians of each round's host/before ratios are printed too (each round's pair ran moments
# apart, so they share its noise).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${1:-8}
ROUNDS=${2:-3}
ONLY=${ONLY:-read,deduct}
HOST_PORT=${HOST_PORT:-3931}
NATIVE_PORT=${NATIVE_PORT:-3932}
BEFORE_PORT=${BEFORE_PORT:-3933}
WASIP2_PORT=${WASIP2_PORT:-3934}

need_wrk
if [[ -z ${HOST:-} ]]; then
  cargo build --release -p inventory-host --quiet
  HOST=./target/release/inventory-host
fi
cargo build --release -p inventory-dev-token --quiet
cargo build --release --quiet --manifest-path bench/native/Cargo.toml --target-dir target/bench-native
"$HOST" build >/dev/null
"$HOST" build -f spin.wasip2.toml >/dev/null

state=$(mktemp -d)
pids=()
declare -A pid_of
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$state"' EXIT
serve_host() { # BINARY PORT NAME [MANIFEST]
  "$1" up --listen "127.0.0.1:$2" --state-dir "$state/$3" ${4:+--from "$4"} \
    --variable rate_limit_requests=1000000000 ${UP_ARGS:-} >"$state/$3.log" 2>&1 &
  pids+=($!)
  pid_of[$3]=$!
}
serve_host "$HOST" "$HOST_PORT" host
serve_host "$HOST" "$WASIP2_PORT" wasip2 spin.wasip2.toml
ports=("$HOST_PORT" "$WASIP2_PORT" "$NATIVE_PORT")
all_sides="host wasip2 native"
if [[ -n ${BEFORE:-} ]]; then
  serve_host "$BEFORE" "$BEFORE_PORT" before "${BEFORE_MANIFEST:-}"
  ports+=("$BEFORE_PORT")
  all_sides="$all_sides before"
fi
all_sides=${SIDES:-$all_sides}
ADDR="127.0.0.1:$NATIVE_PORT" DB="$state/native.db" target/bench-native/release/bench-native >"$state/native.log" 2>&1 &
pids+=($!)
pid_of[native]=$!
for port in "${ports[@]}"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

token=$(./target/release/inventory-dev-token --sub bench)
auth="Authorization: Bearer $token"
# The hosts' products, as the native side seeds its own: ids 1 to 1,000.
for port in "${ports[@]}"; do
  [[ $port == "$NATIVE_PORT" ]] && continue
  seq 1 1000 | xargs -P 4 -I{} curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/product" \
    -H "$auth" -H 'content-type: application/json' \
    -d '{"name": "Bench {}", "description": "350 ml", "price": 12.5, "stock": 1000000000, "category_id": 3, "sku": "BENCH-{}"}'
done
for port in "${ports[@]}"; do
  curl -fs -o /dev/null "http://127.0.0.1:$port/product/1000" -H "$auth" || { echo "port $port has no product 1000" >&2; exit 1; }
done

write_deduct_lua "$state/deduct.lua"

# One round against the server PID: prints "req/s p50_ms p99_ms cpu_us_per_request".
round() {
  local pid=$1 connections=$2; shift 2
  wrk_with_cpu "$pid" -t2 -c"$connections" -d"${DURATION}s" --latency "$@"
}

load() {
  local name=$1 side=$2 port
  port=$(port_of "$side")
  case $name in
    read) round "${pid_of[$side]}" 32 -H "$auth" "http://127.0.0.1:$port/product/42" ;;
    deduct) round "${pid_of[$side]}" 64 -H "$auth" -s "$state/deduct.lua" "http://127.0.0.1:$port" -- 1 ;;
  esac
}

echo "wrk -t2, ${DURATION}s rounds, $ROUNDS rounds a side, alternating; host: $HOST${BEFORE:+, before: $BEFORE}"
port_of() { case $1 in host) echo "$HOST_PORT" ;; wasip2) echo "$WASIP2_PORT" ;; native) echo "$NATIVE_PORT" ;; before) echo "$BEFORE_PORT" ;; esac; }
for name in ${ONLY//,/ }; do
  for side in $all_sides; do : >"$state/$name.$side"; done
  for r in $(seq "$ROUNDS"); do
    # Rotate who goes first, so no side always runs on a warmer (or hotter) machine.
    read -ra sides <<<"$all_sides"
    shift_by=$(( (r - 1) % ${#sides[@]} ))
    sides=("${sides[@]:shift_by}" "${sides[@]:0:shift_by}")
    for side in "${sides[@]}"; do
      result=$(load "$name" "$side")
      echo "$result" >>"$state/$name.$side"
      printf '%-7s round %d  %-7s %6s req/s  p50 %s ms  p99 %s ms  CPU %s us/req\n' "$name" "$r" "$side" $result
    done
  done
  if [[ " $all_sides " == *" native "* ]]; then
    n=$(cut -d' ' -f1 "$state/$name.native" | median)
    n_cpu=$(cut -d' ' -f4 "$state/$name.native" | median)
  fi
  for side in $all_sides; do
    m=$(cut -d' ' -f1 "$state/$name.$side" | median)
    cpu=$(cut -d' ' -f4 "$state/$name.$side" | median)
    printf '%-7s median  %-7s %6s req/s  p99 %s ms  CPU %s us/req' \
      "$name" "$side" "$m" "$(cut -d' ' -f3 "$state/$name.$side" | median)" "$cpu"
    [[ -n ${n:-} ]] && printf '  /native %.2fx  native/this %.2fx' "$(echo "$m / $n" | bc -l)" "$(echo "$n_cpu / $cpu" | bc -l)"
    echo
  done
  if [[ " $all_sides " == *" host "* && " $all_sides " == *" before "* ]]; then
    printf '%-7s host/before, median of the rounds'"'"' ratios: req/s %.3fx  CPU per request %.3fx\n' "$name" \
      "$(paste -d' ' "$state/$name.host" "$state/$name.before" | awk '{ print $1 / $5 }' | median)" \
      "$(paste -d' ' "$state/$name.host" "$state/$name.before" | awk '{ print $4 / $8 }' | median)"
  fi
  unset n n_cpu
done
