#!/usr/bin/env bash
# Bounded soak of one `barong serve` (SQLite, temp dir): MINUTES (default 20) of mixed traffic at
# a steady rate, with sessions and API keys churning, sampling the server's resident memory.
#
#   benches/soak.sh [MINUTES]                      # builds release first
#   BARONG_BIN=target/debug/barong benches/soak.sh 1   # a quick run with a given binary
#
# Traffic, all on the REST listener (which also answers `/api/v2/auth/...`), from wrk paced
# with a Lua `delay()` (CONNECTIONS connections x one request per DELAY_MS each; a closed loop,
# so the p99 is a floor): in turn a cookie decision (200 + JWT), a decision without a session
# (401 authz.invalid_session, expected), `GET public/ping` and `GET resource/users/me` with the
# minted JWT. Any other status counts as an error. Next to it benches/soak_driver.py logs a user
# in and out five times a second (a new session, allowed, revoked) and every 30 s creates, uses
# and deletes an API key of a 2FA user.
# Prints: duration, requests and rate, p50/p99/max, errors (wrk and driver), VmRSS every
# SAMPLE seconds reduced to the band after the first minute (or the first 10 s of a shorter run).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-20}
CONNECTIONS=${CONNECTIONS:-8}
DELAY_MS=${DELAY_MS:-20}
SAMPLE=${SAMPLE:-5}
PYTHON=${PYTHON:-python3}

if [ -z "${BARONG_BIN:-}" ]; then
  cargo build --release --locked --bin barong
  BARONG_BIN=target/release/barong
fi
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port)
AUTHZ_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
AUTHZ=http://127.0.0.1:$AUTHZ_PORT
env BARONG_DATA_DIR="$WORK/data" BARONG_DATABASE_URL="sqlite://$WORK/barong.db" \
  BARONG_API_ADDR=127.0.0.1:$API_PORT BARONG_AUTHZ_ADDR=127.0.0.1:$AUTHZ_PORT \
  BARONG_JWT_EXPIRE_TIME=$((MINUTES * 60 + 600)) BARONG_SESSION_EXPIRE_TIME=$((MINUTES * 60 + 600)) \
  BARONG_SMTP_PORT=9 RUST_LOG=warn "$BARONG_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "$API/api/v2/barong/public/ping" >/dev/null && break; sleep 0.2; done

"$PYTHON" benches/soak_driver.py setup "$API" "$AUTHZ" >"$WORK/setup.json"
COOKIE=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["steady_cookie"])' "$WORK/setup.json")
BEARER=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["steady_bearer"])' "$WORK/setup.json")

cat >"$WORK/mixed.lua" <<LUA
local requests = {
  {path = "/api/v2/auth/api/v2/peatio/account/balances", headers = {["Cookie"] = "$COOKIE"}},
  {path = "/api/v2/auth/api/v2/peatio/account/balances", headers = {}},
  {path = "/api/v2/barong/public/ping", headers = {}},
  {path = "/api/v2/barong/resource/users/me", headers = {["Authorization"] = "$BEARER"}},
}
-- globals: thread:get() reads only globals
n, errors = 0, 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function request()
  n = n + 1
  local r = requests[(n % #requests) + 1]
  r.headers["User-Agent"] = "soak-driver"
  return wrk.format("GET", r.path, r.headers)
end
-- Several connections share a thread's state, so an answer is not matched to its request:
-- anything but a 200 or the deny's 401 authz.invalid_session is an error, and the 401s are
-- counted (a quarter of the requests are denies; more would mean the cookie stopped working).
denied = 0
function response(status, headers, body)
  if status == 401 and string.find(body, "authz.invalid_session", 1, true) then
    denied = denied + 1
  elseif status ~= 200 then
    errors = errors + 1
  end
end
function delay() return $DELAY_MS end
function done(summary, latency, requests)
  local total, deny = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("errors")
    deny = deny + thread:get("denied")
  end
  io.write(string.format("unexpected_status=%d expected_denies=%d of %d requests\n",
    total, deny, summary.requests))
end
LUA

STOP=$WORK/stop
"$PYTHON" benches/soak_driver.py churn "$API" "$AUTHZ" "$WORK/setup.json" "$STOP" >"$WORK/driver.out" 2>"$WORK/driver.err" &
DRIVER_PID=$!
( while kill -0 "$SERVER_PID" 2>/dev/null; do
    printf '%s %s\n' "$(date +%s)" "$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
    sleep "$SAMPLE"
  done ) >"$WORK/rss" &
SAMPLER_PID=$!
STARTED=$(date +%s)
wrk -t2 -c"$CONNECTIONS" -d"${MINUTES}m" --latency --timeout 5s -s "$WORK/mixed.lua" "$API" >"$WORK/wrk.out" 2>&1 || true
touch "$STOP"
wait "$DRIVER_PID" || true
kill "$SAMPLER_PID" 2>/dev/null || true
ALIVE=$(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo "NO (crashed)")

SKIP=$(( MINUTES > 1 ? 60 : 10 ))
BAND=$(awk -v start="$STARTED" -v skip="$SKIP" '$1 >= start + skip && $2 != "" {
    if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2; n++ }
  END { printf "%.1f-%.1f MiB (%d samples)", min/1024, max/1024, n }' "$WORK/rss")
FIRST=$(awk 'NR==1 {printf "%.1f MiB", $2/1024}' "$WORK/rss")
echo "soak: ${MINUTES} min, $CONNECTIONS connections x 1 request per ${DELAY_MS} ms, binary $BARONG_BIN"
grep -E "requests in|Requests/sec|Non-2xx|Socket errors" "$WORK/wrk.out" | sed 's/^ */wrk: /' || true
awk '/Latency Distribution/ {p=1; next} p && /%/ {print "wrk: p" $1 " " $2} /99%/ {p=0}' "$WORK/wrk.out"
grep -E "Latency " "$WORK/wrk.out" | head -1 | awk '{print "wrk: mean " $2 ", max " $4}'
grep unexpected_status "$WORK/wrk.out" | sed 's/^/wrk: /' || echo "wrk: unexpected_status unknown"
echo "driver: $(cat "$WORK/driver.out")"
[ ! -s "$WORK/driver.err" ] || sed 's/^/driver stderr: /' "$WORK/driver.err" | head -5
# Drift: mean RSS of the first and of the last fifth of the samples after the warm-up.
TREND=$(awk -v start="$STARTED" -v skip="$SKIP" '$1 >= start + skip && $2 != "" { v[n++] = $2 }
  END { k = int(n / 5); if (k < 1) k = 1; for (i = 0; i < k; i++) { a += v[i]; b += v[n - 1 - i] }
        printf "%.1f MiB -> %.1f MiB", a / k / 1024, b / k / 1024 }' "$WORK/rss")
echo "rss: at start $FIRST, band after ${SKIP} s: $BAND; first fifth -> last fifth: $TREND"
echo "server alive at the end: $ALIVE"
