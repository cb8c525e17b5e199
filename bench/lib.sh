# What the bench scripts share; sourced, not run.

# wrk, from Debian, where the machine has none.
need_wrk() {
  command -v wrk >/dev/null && return
  echo "installing wrk (Debian package)"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
}

# wrk's report (with --latency) on stdin, as "req/s p50_ms p99_ms requests"; a run with any
# answer that is not 2xx or 3xx fails.
wrk_figures() {
  awk '
    / requests in / { n = $1 }
    /Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { if (bad > 0) { print "error: " bad " responses were not 2xx/3xx" > "/dev/stderr"; exit 1 }
          printf "%.0f %.2f %.2f %d\n", rps, ms(p50), ms(p99), n }'
}

# The CPU time (user and system, in clock ticks) process PID has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# One wrk run against the server PID (the rest are wrk's arguments): prints
# "req/s p50_ms p99_ms cpu_us_per_request", the server's CPU time read from /proc, without
# wrk's share; any answer that is not 2xx or 3xx fails the run.
wrk_with_cpu() {
  local pid=$1; shift
  local before figures rps p50 p99 requests
  before=$(cpu_ticks "$pid")
  figures=$(wrk "$@" | wrk_figures)
  read -r rps p50 p99 requests <<<"$figures"
  echo "$rps $p50 $p99 $(( ($(cpu_ticks "$pid") - before) * 1000000 / $(getconf CLK_TCK) / requests ))"
}

# The median of the numbers on stdin, one a line.
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# Writes FILE, a wrk script that deducts 1 with a key no other request uses: from the hot
# product 42 (`-- 1` after the URL), or from products 1 to N at random (`-- N`).
write_deduct_lua() {
  cat >"$1" <<'LUA'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  products = tonumber(args[1])
  n = 0
  math.randomseed(tid * 7919 + os.time())
end
function request()
  n = n + 1
  local id = 42
  if products > 1 then id = math.random(1, products) end
  -- wrk.format takes these headers instead of wrk.headers (-H), so copy those in.
  local headers = { ["Content-Type"] = "application/json" }
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Idempotency-Key"] = "bench-" .. os.time() .. "-" .. tid .. "-" .. n
  return wrk.format("POST", "/product/" .. id .. "/deduct", headers, '{"quantity": 1, "order_id": "bench"}')
end
LUA
}
