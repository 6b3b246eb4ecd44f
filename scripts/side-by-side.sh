#!/usr/bin/env bash
# Two settings (or two builds) of the service side by side on the bench database, alternating, so that a change is
# measured against what it replaces in the same minutes (docs/performance.md's "side by side" figures).
#
#   bash scripts/side-by-side.sh create "EVENTDATA_DB_CREATES_TO_START_ANOTHER=1" "EVENTDATA_DB_CREATES_TO_START_ANOTHER=8"
#   BIN_A=/tmp/eventdata-before bash scripts/side-by-side.sh create "" ""      # two builds, same settings
#
# Each run starts `eventdata serve` with the side's environment, runs `eventdata loadgen` against it and stops it,
# then deletes the events and changes the run created (and vacuums), so every run starts from the same data. The
# RUM index is rebuilt after the deletes: inserts into a vacuumed RUM index walk its emptied posting pages
# (docs/operations.md, "Index bloat after deletes"), which would weigh on every run after the first.
# Needs the bench database seeded by `scripts/bench.sh`. Settings: ROUNDS (3), SECONDS_PER_RUN (12), CONCURRENCY
# (16), BIN_A and BIN_B (target/release/eventdata; build both the way bench.sh builds, with its examples, since
# their dev-dependencies' features change the binary).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 3 ] || { echo "usage: $0 WORKLOAD \"ENV A\" \"ENV B\"" >&2; exit 2; }
WORKLOAD=$1 ENV_A=$2 ENV_B=$3
ROUNDS="${ROUNDS:-3}" SECONDS_PER_RUN="${SECONDS_PER_RUN:-12}" CONCURRENCY="${CONCURRENCY:-16}"
BIN_A="${BIN_A:-target/release/eventdata}" BIN_B="${BIN_B:-target/release/eventdata}"
DB=eventdata_bench
PG_SUPER="postgres://postgres@127.0.0.1:5432/${DB}"
export DATABASE_URL="postgres://eventdata_app@127.0.0.1:5432/${DB}"
export DATABASE_ADMIN_URL="postgres://eventdata_owner@127.0.0.1:5432/${DB}"
export EVENTDATA_GRPC_ADDR="127.0.0.1:50151" EVENTDATA_HTTP_ADDR="127.0.0.1:8151" RUST_LOG="${RUST_LOG:-warn}"

psql "$PG_SUPER" -qAtc "SELECT 1 FROM organizations WHERE slug = 'bench'" 2>/dev/null | grep -q 1 \
  || { echo "no seeded ${DB}: run scripts/bench.sh first" >&2; exit 1; }
KEY=$("$BIN_A" keys create --org bench --scopes read,write --name side-by-side 2>/dev/null)
export EVENTDATA_API_KEY="$KEY"

serve_pid=""
stop() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null; serve_pid=""; }
trap stop EXIT

# run LABEL BIN "ENV": one run; prints calls/s, p95 and, for creates, creates per shared statement.
run() {
  local label=$1 bin=$2 settings=$3 from result
  from=$(psql "$PG_SUPER" -qAtc "SELECT now()")
  # shellcheck disable=SC2086 # the settings are words of `env`
  env $settings "$bin" serve >target/side-by-side-serve.log 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 100); do curl -sf "http://${EVENTDATA_HTTP_ADDR}/health/ready" >/dev/null && break; sleep 0.1; done
  result=$("$bin" loadgen --url "http://${EVENTDATA_GRPC_ADDR}" --workload "$WORKLOAD" --concurrency "$CONCURRENCY" \
    --duration "$SECONDS_PER_RUN" | grep '^RESULT')
  local per_statement
  per_statement=$(curl -s "http://${EVENTDATA_HTTP_ADDR}/metrics" \
    | awk '/^eventdata_db_creates_per_statement_sum /{s=$2} /^eventdata_db_creates_per_statement_count /{c=$2}
           END {if (c > 0) printf "%.2f", s / c; else printf "-"}')
  stop
  psql "$PG_SUPER" -q -c "DELETE FROM events WHERE created_at >= '${from}'" \
    -c "DELETE FROM outbox WHERE created_at >= '${from}'" -c "VACUUM events, outbox" \
    -c "REINDEX INDEX events_search_rum_idx"
  local rps p95 errors
  IFS=$'\t' read -r rps p95 errors \
    <<<"$(echo "$result" | sed -E 's/.* rps=([^ ]+) p50_ms=[^ ]+ p95_ms=([^ ]+).* errors=(.*)/\1\t\2\t\3/')"
  printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$p95" "$per_statement" "$errors"
}

printf 'side\tcalls/s\tp95 ms\tcreates per statement\terrors\n'
for _ in $(seq 1 "$ROUNDS"); do
  run "A ${ENV_A:-(as is)}" "$BIN_A" "$ENV_A"
  run "B ${ENV_B:-(as is)}" "$BIN_B" "$ENV_B"
done
