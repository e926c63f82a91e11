#!/bin/sh
# Self-check of this example service, outside gameday's lab: starts the project's broker
# simulator and ONE instance of the service (both on port 0), sends a handful of orders,
# checks the answers and that /metrics has every contract metric, trips the breaker
# (broker error mode) and lets it close again, then stops the service with SIGTERM
# (drain: /ready 503 at once, the order in flight finishes, exit 0) and the broker.
# Everything it starts is stopped by PID. Exit status 0 when every check passed.
#
#   sh smoke.sh            (PYTHON=... to use another interpreter for the simulator)
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/node-opossum-smoke.XXXXXX")
BROKER_PID=
SERVICE_PID=
PASSED=0
FAILED=0
RUN=smoke-$$-$(date +%s)

cleanup() {
    if [ -n "$SERVICE_PID" ]; then kill "$SERVICE_PID" 2>/dev/null; wait "$SERVICE_PID" 2>/dev/null; fi
    if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && echo "       $2"; return 0; }
check() { # check DESCRIPTION SHELL-EXPRESSION
    if eval "$2"; then pass "$1"; else fail "$1"; fi
}

# first line of FILE matching PATTERN, waiting up to 10 s
wait_line() {
    i=0
    while [ $i -lt 100 ]; do
        line=$(grep -m1 "$2" "$1" 2>/dev/null) && { echo "$line"; return 0; }
        i=$((i + 1)); sleep 0.1
    done
    return 1
}

# post_order ID INSTRUMENT UNITS PRICE -> prints the HTTP code; body in $TMP/body
post_order() {
    curl -s -m 5 -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"client_order_id\": \"$1\", \"instrument\": \"$2\", \"units\": $3, \"price\": $4}" \
        "$SERVICE/orders"
}
json_field() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p" "$TMP/body"; }
broker_mode() {
    curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" "$ADMIN/admin/mode"
}
scrape() { curl -s -m 5 "$SERVICE/metrics" > "$TMP/metrics"; }
has_metric() { grep -E -q "$1" "$TMP/metrics"; }
breaker_is() { curl -s -m 5 "$SERVICE/health" | grep -q "\"breaker\":\"$1\""; }

# --- setup ---------------------------------------------------------------------------
[ -d "$HERE/node_modules" ] || sh "$HERE/setup.sh" || { echo "setup.sh failed"; exit 1; }
[ -x "$PYTHON" ] || { echo "no Python for the broker simulator at $PYTHON (set PYTHON)"; exit 1; }

(cd "$ROOT" && exec env -u GAMEDAY_ADMIN_TOKEN "$PYTHON" -m lab.broker --port 0 --admin-port 0 \
    --latency-ms 5 --seed 1) > "$TMP/broker.out" 2> "$TMP/broker.err" &
BROKER_PID=$!
line=$(wait_line "$TMP/broker.out" '^listening ') || { cat "$TMP/broker.err"; echo "broker did not start"; exit 1; }
BROKER=$(echo "$line" | cut -d' ' -f2)
ADMIN=$(echo "$line" | cut -d' ' -f4)
echo "broker simulator: $BROKER (admin $ADMIN), pid $BROKER_PID"

(cd "$HERE" && exec node server.js --host 127.0.0.1 --port 0 --broker-url "$BROKER" --name smoke-1) \
    > "$TMP/service.out" 2> "$TMP/service.err" &
SERVICE_PID=$!
first=$(wait_line "$TMP/service.out" '') || { cat "$TMP/service.err"; echo "service did not start"; exit 1; }
echo "service: $first, pid $SERVICE_PID"
case $first in
    "listening http://127.0.0.1:"[0-9]*) pass "first stdout line is the bound URL (port 0)" ;;
    *) fail "first stdout line is the bound URL (port 0)" "$first" ;;
esac
SERVICE=${first#listening }

# --- health, readiness ---------------------------------------------------------------
curl -s -m 5 "$SERVICE/health" > "$TMP/health"
check "/health 200 with name and breaker" \
    'grep -q "\"status\":\"ok\",\"name\":\"smoke-1\",\"breaker\":\"closed\"" "$TMP/health"'
curl -s -m 5 "$SERVICE/ready" > "$TMP/ready"
check "/ready 200 ready" 'grep -q "\"status\":\"ready\"" "$TMP/ready"'

# --- orders --------------------------------------------------------------------------
ok=0
for n in 1 2 3 4 5; do
    [ "$(post_order "$RUN-$n" EUR_USD 1000 1.0842)" = 200 ] && ok=$((ok + 1))
done
check "5 orders filled (200)" '[ $ok -eq 5 ]'
code=$(post_order "$RUN-jpy" USD_JPY -500 151.25)
check "a JPY sell order filled (200, status filled)" \
    '[ "$code" = 200 ] && grep -q "\"status\":\"filled\"" "$TMP/body"'

post_order "$RUN-1" EUR_USD 1000 1.0842 > /dev/null
first_fill=$(json_field fill_id)
post_order "$RUN-1" EUR_USD 1000 1.0842 > /dev/null
check "same client_order_id gets the same fill back" \
    '[ -n "$first_fill" ] && [ "$first_fill" = "$(json_field fill_id)" ]'
ledger=$(curl -s -m 5 "$BROKER/fills?client_order_id=$RUN-1" | grep -o '"fill_id"' | wc -l)
check "broker ledger has exactly one fill for it" '[ "$ledger" -eq 1 ]'

code=$(post_order "$RUN-rej" GOLD 1000 1.0842)
check "unknown instrument: 422 {status: rejected}" \
    '[ "$code" = 422 ] && grep -q "\"status\":\"rejected\"" "$TMP/body"'
code=$(post_order "$RUN-bad" EUR_USD 0 1.0842)
check "units 0: 400 naming the field" '[ "$code" = 400 ] && grep -q "\"field\":\"units\"" "$TMP/body"'
code=$(curl -s -m 5 -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{nope' "$SERVICE/orders")
check "invalid JSON: 400" '[ "$code" = 400 ]'

# --- breaker: trip on broker 500s, then recover ---------------------------------------
code=$(broker_mode '{"mode": "error", "status": 500}')
check "broker switched to error mode" '[ "$code" = 200 ]'
codes=
for n in 1 2 3 4 5 6 7 8 9 10 11 12; do
    codes="$codes $(post_order "$RUN-err-$n" EUR_USD 1000 1.0842)"
done
echo "       answers during the broker fault:$codes"
check "broker 500s answered 502 (failed)" 'echo "$codes" | grep -q 502'
check "breaker opened: later answers 503 (circuit_open)" 'echo "$codes" | grep -q "503$"'
post_order "$RUN-open" EUR_USD 1000 1.0842 > /dev/null
check "open breaker body is {error: circuit_open}" 'grep -q "\"error\":\"circuit_open\"" "$TMP/body"'
retry_after=$(curl -s -m 5 -D - -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"client_order_id\": \"$RUN-ra\", \"instrument\": \"EUR_USD\", \"units\": 1, \"price\": 1.1}" \
    "$SERVICE/orders" | tr -d '\r' | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
check "503 carries Retry-After >= 1 (got '$retry_after')" '[ "${retry_after:-0}" -ge 1 ]'
check "/health says breaker open (and answers 200)" 'breaker_is open'
scrape
check "metrics: state open = 1" \
    'has_metric "^broker_circuit_breaker_state\{broker_circuit_breaker_state=\"open\"\} 1$"'
check "metrics: transition closed->open counted" \
    'has_metric "^broker_circuit_breaker_transitions_total\{from_state=\"closed\",to_state=\"open\"\} 1$"'
check "metrics: broker_connection_status 1 (HTTP answers)" 'has_metric "^broker_connection_status 1$"'

broker_mode '{"mode": "normal"}' > /dev/null
i=0
while [ $i -lt 80 ] && ! breaker_is half_open; do i=$((i + 1)); sleep 0.1; done
check "breaker half_open after its reset timeout" 'breaker_is half_open'
code=$(post_order "$RUN-trial" EUR_USD 1000 1.0842)
check "trial order filled (200)" '[ "$code" = 200 ]'
check "breaker closed again" 'breaker_is closed'

# --- metrics -------------------------------------------------------------------------
scrape
for status in filled rejected failed circuit_open; do
    check "metrics: broker_orders_total{status=\"$status\"} > 0" \
        'has_metric "^broker_orders_total\{status=\"$status\"\} [1-9]"'
done
check "metrics: # TYPE broker_orders_total counter" 'has_metric "^# TYPE broker_orders_total counter$"'
for name in broker_order_execution_seconds broker_slippage_pips broker_api_request_seconds; do
    check "metrics: $name histogram with _bucket, _sum, _count" \
        'has_metric "^# TYPE $name histogram$" && has_metric "^${name}_bucket\{" &&
         has_metric "^${name}_sum" && has_metric "^${name}_count"'
done
check "metrics: order latency bucket le=0.8" 'has_metric "^broker_order_execution_seconds_bucket\{le=\"0.8\"\}"'
check "metrics: slippage bucket le=-0.25" 'has_metric "^broker_slippage_pips_bucket\{le=\"-0.25\"\}"'
check "metrics: broker calls endpoint=/orders status=200" \
    'has_metric "^broker_api_request_seconds_count\{([^}]*,)?endpoint=\"/orders\",status=\"200\"\}"'
check "metrics: broker calls status=500" 'has_metric "^broker_api_request_seconds_count\{[^}]*status=\"500\""'
check "metrics: gauge broker_connection_status" 'has_metric "^# TYPE broker_connection_status gauge$"'
for state in closed open half_open; do
    value=0; [ $state = closed ] && value=1
    check "metrics: broker_circuit_breaker_state{$state} $value" \
        'has_metric "^broker_circuit_breaker_state\{broker_circuit_breaker_state=\"$state\"\} $value$"'
done
check "metrics: transitions open->half_open and half_open->closed" \
    'has_metric "^broker_circuit_breaker_transitions_total\{from_state=\"open\",to_state=\"half_open\"\} 1$" &&
     has_metric "^broker_circuit_breaker_transitions_total\{from_state=\"half_open\",to_state=\"closed\"\} 1$"'
check "metrics: # TYPE broker_circuit_breaker_transitions_total counter" \
    'has_metric "^# TYPE broker_circuit_breaker_transitions_total counter$"'
ts=$(sed -n 's/^broker_circuit_breaker_last_transition_timestamp_seconds \([0-9.e+]*\)$/\1/p' "$TMP/metrics")
now=$(date +%s)
check "metrics: last transition timestamp is recent wall-clock time ($ts)" \
    'awk -v ts="${ts:-0}" -v now="$now" "BEGIN { exit !(ts > now - 60 && ts <= now + 1) }"'
check "metrics: no *_created series" '! has_metric "_created"'

# --- SIGTERM drain -------------------------------------------------------------------
# The broker answers in ~0.7 s; an order sent inside the 1 s drain delay is still in
# flight when the server stops accepting connections, and must still be filled.
broker_mode '{"mode": "slow", "latency_ms": 700}' > /dev/null
start=$(date +%s)
kill -TERM "$SERVICE_PID"
sleep 0.1
code=$(curl -s -m 2 -o "$TMP/ready" -w '%{http_code}' "$SERVICE/ready")
check "/ready 503 draining right after SIGTERM" '[ "$code" = 503 ] && grep -q "\"status\":\"draining\"" "$TMP/ready"'
sleep 0.6
post_order "$RUN-inflight" EUR_USD 1000 1.0842 > "$TMP/inflight.code" &
CURL_PID=$!
wait "$CURL_PID"
check "order in flight during the drain still filled ($(cat "$TMP/inflight.code"))" \
    '[ "$(cat "$TMP/inflight.code")" = 200 ]'
wait "$SERVICE_PID"; rc=$?
took=$(( $(date +%s) - start ))
SERVICE_PID=
check "service exited 0 after SIGTERM (rc $rc, ${took} s)" '[ "$rc" -eq 0 ] && [ "$took" -le 10 ]'
broker_mode '{"mode": "normal"}' > /dev/null

kill -TERM "$BROKER_PID"; wait "$BROKER_PID"; BROKER_PID=

echo "service log:"; sed 's/^/       /' "$TMP/service.out"
[ -s "$TMP/service.err" ] && { echo "service stderr:"; sed 's/^/       /' "$TMP/service.err"; }
echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
