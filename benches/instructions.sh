#!/usr/bin/env bash
# User-space instructions per answered request, counted by valgrind's callgrind: repeatable to a
# few per cent whatever else the machine does, unlike CPU time (docs/benchmarks.md). What it
# cannot see is the kernel's share (the TCP path, about 60 % of the server's CPU under load), so
# it complements benches/load.sh, it does not replace it.
#
#   benches/instructions.sh [--no-build] [--seconds N] [--keep DIR] [--cache-sim] [SCENARIO...]
#
# Scenarios (default: all): guarded (examples/baseline.rs with barong's head deadline, the floor
# of any answer on barong's listener settings), keyfloor (the same asked the API-key request, whose
# three custom headers cost hyper more to parse: the API-key allow's floor), cookie (cached
# session -> 200 + JWT), apikey (cached HS256 key), deny (no session -> 401), envoy (the cookie
# check as Envoy's HTTP ext_authz sends it: its request id, X-Forwarded-For and own headers) and
# envoyfloor (the bare server asked that request: envoy's floor). Each runs its server under callgrind with
# instrumentation off, warms its caches, then counts while wrk (1 thread, 4 connections) sends
# requests for N seconds (default 6). BARONG_BENCH_BIN compares another barong binary. --keep DIR
# keeps each scenario's callgrind file as DIR/callgrind.SCENARIO, for `callgrind_annotate
# --inclusive=yes DIR/callgrind.cookie` (where the instructions go, by function). --cache-sim
# also simulates a 32 KiB L1 (instructions and data) and a 1 MiB last level and reports the L1
# misses per request beside the instructions (`callgrind_annotate --show=D1mr` says whose).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=1 SECONDS_PER=6 KEEP= CACHE_SIM=() SCENARIOS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --seconds) SECONDS_PER=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    --cache-sim) CACHE_SIM=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,16,64) ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    guarded|keyfloor|cookie|apikey|deny|envoy|envoyfloor) SCENARIOS+=("$1") ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(guarded keyfloor cookie apikey deny)

STARTED=$(date +%s)
log() { printf '[instructions %4ss] %s\n' "$(( $(date +%s) - STARTED ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in valgrind callgrind_control wrk curl psql; do
  command -v "$tool" >/dev/null || die "$tool is needed (Debian: valgrind, wrk, curl, postgresql-client)"
done
if [ "$BUILD" = 1 ]; then
  # The same set as benches/load.sh builds, so neither rebuilds the other's dependencies.
  log "cargo build --release --bin barong --example baseline --example loadprep --example grpc_floor"
  cargo build --release --locked --bin barong --example baseline --example loadprep \
    --example grpc_floor >&2 || die "release build failed"
fi
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BARONG=${BARONG_BENCH_BIN:-$TARGET_DIR/release/barong}
BASELINE=$TARGET_DIR/release/examples/baseline
LOADPREP=$TARGET_DIR/release/examples/loadprep
for bin in "$BARONG" "$BASELINE" "$LOADPREP"; do [ -x "$bin" ] || die "$bin missing (drop --no-build)"; done

PG_ADMIN=${BARONG_BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}
DB_NAME=barong_instructions_$$
DB_URL=${PG_ADMIN%/*}/$DB_NAME
WORK=$(mktemp -d /tmp/barong-instructions.XXXXXX)
ENCRYPTION_KEY=4242424242424242424242424242424242424242424242424242424242424242
AGENT="barong-load/1"
ADDR=127.0.0.1:${BARONG_BENCH_PORT:-18102}
URL=http://$ADDR/api/v2/auth/api/v2/barong/resource/users/me
SERVER=

cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql "$PG_ADMIN" -qc "CREATE DATABASE $DB_NAME" >/dev/null || die "cannot create $DB_NAME"
"$LOADPREP" seed --database-url "$DB_URL" --sessions 100 --users 10 \
  --encryption-key "$ENCRYPTION_KEY" --agent "$AGENT" >"$WORK/seed.env" 2>/dev/null || die "seeding failed"
COOKIE0= KID= NONCE= SIGNATURE=
while IFS='=' read -r key value; do
  case "$key" in COOKIE0|KID|NONCE|SIGNATURE) printf -v "$key" '%s' "$value" ;; esac
done <"$WORK/seed.env"
[ -n "$KID" ] || die "loadprep printed no API key"

declare -A PER_REQUEST I1_MISSES D1_MISSES
for scenario in "${SCENARIOS[@]}"; do
  case $scenario in
    guarded|keyfloor|envoyfloor) cmd=("$BASELINE" --addr "$ADDR" --head-deadline 10) ;;
    *) cmd=("$BARONG" serve --no-migrate) ;;
  esac
  case $scenario in
    guarded|cookie) headers=(-H "User-Agent: $AGENT" -H "Cookie: _barong_session=$COOKIE0") ;;
    keyfloor|apikey) headers=(-H "X-Auth-Apikey: $KID" -H "X-Auth-Nonce: $NONCE" -H "X-Auth-Signature: $SIGNATURE") ;;
    deny) headers=(-H "User-Agent: $AGENT") ;;
    # What Envoy 1.40 sends barong for the cookie request (envoy/envoy.yaml), header for header.
    envoy|envoyfloor) headers=(-H "Content-Length: 0" -H "User-Agent: $AGENT"
      -H "X-Request-Id: 3d72e417-60aa-47cc-b232-bde2254ede99"
      -H "Cookie: _barong_session=$COOKIE0" -H "X-Forwarded-For: 127.0.0.1"
      -H "X-Envoy-Internal: true" -H "X-Envoy-Expected-Rq-Timeout-Ms: 2000") ;;
  esac
  out=$WORK/callgrind.$scenario
  mkdir -p "$WORK/data-$scenario"
  BARONG_DATABASE_URL=$DB_URL BARONG_DATA_DIR=$WORK/data-$scenario \
    BARONG_ENCRYPTION_KEY=$ENCRYPTION_KEY BARONG_JWT_ALGORITHM=RS256 BARONG_AUTHZ_ADDR=$ADDR \
    BARONG_API_ADDR=127.0.0.1:0 BARONG_APIKEY_NONCE_LIFETIME=86400000 RUST_LOG=warn \
    valgrind --tool=callgrind --instr-atstart=no "${CACHE_SIM[@]}" --callgrind-out-file="$out" "${cmd[@]}" \
    >"$WORK/$scenario.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 600); do
    curl -s -o /dev/null --max-time 2 "$URL" && break
    kill -0 "$SERVER" 2>/dev/null || die "$scenario server exited: $(tail -3 "$WORK/$scenario.log")"
    sleep 0.2
  done
  # Caches filled and connections warm before counting.
  wrk -t1 -c4 -d2 "${headers[@]}" "$URL" >/dev/null
  callgrind_control -i on "$SERVER" >/dev/null 2>&1
  requests=$(wrk -t1 -c4 -d"$SECONDS_PER" "${headers[@]}" "$URL" | awk '/requests in/ { print $1 }')
  callgrind_control -d "$SERVER" >/dev/null 2>&1
  kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true
  SERVER=
  total=$(awk '/^summary:/ { print $2; exit }' "$out.1")
  [ -n "$total" ] && [ "${requests:-0}" -gt 0 ] || die "$scenario: no count (see $WORK/$scenario.log)"
  PER_REQUEST[$scenario]=$(( total / requests ))
  if [ ${#CACHE_SIM[@]} -gt 0 ]; then
    # The summary's columns are named by the `events:` line (Ir I1mr ILmr Dr D1mr ...).
    read -r I1_MISSES[$scenario] D1_MISSES[$scenario] < <(awk -v n="$requests" '
      /^events:/ { for (i = 2; i <= NF; i++) col[$i] = i - 1 }
      /^summary:/ { split($0, v, " "); printf "%d %d\n", v[col["I1mr"] + 1] / n, v[col["D1mr"] + 1] / n; exit }' "$out.1")
  fi
  if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp "$out.1" "$KEEP/callgrind.$scenario"; fi
  log "$scenario: $requests requests, ${PER_REQUEST[$scenario]} instructions per request${I1_MISSES[$scenario]:+, L1 misses: ${I1_MISSES[$scenario]} instruction, ${D1_MISSES[$scenario]} data read}"
done

if [ ${#CACHE_SIM[@]} -gt 0 ]; then
  echo "| scenario | instructions per request | vs floor (apikey: keyfloor; envoy: envoyfloor; others: guarded) | L1 instruction misses | L1 data read misses |"
  echo "|---|---|---|---|---|"
else
  echo "| scenario | instructions per request | vs floor (apikey: keyfloor; envoy: envoyfloor; others: guarded) |"
  echo "|---|---|---|"
fi
for scenario in "${SCENARIOS[@]}"; do
  floor=guarded
  [ "$scenario" = apikey ] && floor=keyfloor
  [ "$scenario" = envoy ] && floor=envoyfloor
  ratio=-
  if [ -n "${PER_REQUEST[$floor]:-}" ]; then
    ratio=$(awk -v b="${PER_REQUEST[$floor]}" -v s="${PER_REQUEST[$scenario]}" 'BEGIN { printf "%.2fx", s / b }')
  fi
  echo "| $scenario | ${PER_REQUEST[$scenario]} | $ratio |${I1_MISSES[$scenario]:+ ${I1_MISSES[$scenario]} | ${D1_MISSES[$scenario]} |}"
done
