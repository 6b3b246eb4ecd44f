#!/usr/bin/env bash
# One command for the performance table in docs/performance.md: seeds a benchmark database, then measures the
# service against the raw ceiling on this machine, back to back, at the same concurrency:
#   * each workload: `eventdata loadgen` (gRPC, through the service) vs `pgbench` running the same SQL directly
#     (scripts written by examples/bench_sql.rs from the service's own projections);
#   * the relay: draining a backlog of changes vs a raw lapin publisher with confirms (examples/relay_bench.rs);
#   * commit -> consumer latency at a steady rate of changes through the API and the relay.
#
# Settings (environment): BENCH_EVENTS (100000), BENCH_EMBEDDINGS (20000), BENCH_CONCURRENCY (16),
# BENCH_DURATION seconds per run (15), BENCH_RELAY_EVENTS (10000, about ten changes each), BENCH_RATE (changes/s of the latency probe, one run per rate: "1000 3000"),
# BENCH_BATCH_CONCURRENCY (4, for batch-create: BatchCreateEvents of 100 events), BENCH_WORKLOADS (all), BENCH_RELAY (1; 0 skips the relay and latency parts), BENCH_SEED (1; 0 reuses the seeded
# database as it is). Needs scripts/setup.sh to have run. Leaves the database eventdata_bench for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${BENCH_EVENTS:-100000}"
EMBEDDINGS="${BENCH_EMBEDDINGS:-20000}"
CONCURRENCY="${BENCH_CONCURRENCY:-16}"
DURATION="${BENCH_DURATION:-15}"
RELAY_EVENTS="${BENCH_RELAY_EVENTS:-10000}"
RATES="${BENCH_RATE:-1000 3000}"
BATCH_CONCURRENCY="${BENCH_BATCH_CONCURRENCY:-4}"
WORKLOADS="${BENCH_WORKLOADS:-create batch-create get list similar text hybrid lookup neighborhood path mixed}"
DB=eventdata_bench
PG_SUPER="postgres://postgres@127.0.0.1:5432"
export DATABASE_ADMIN_URL="postgres://eventdata_owner@127.0.0.1:5432/${DB}"
export DATABASE_URL="postgres://eventdata_app@127.0.0.1:5432/${DB}"
export EVENTDATA_RELAY_DATABASE_URL="postgres://eventdata_relay@127.0.0.1:5432/${DB}"
export EVENTDATA_RELAY_EXCHANGE="eventdata.bench"
export EVENTDATA_GRPC_ADDR="127.0.0.1:50151" EVENTDATA_HTTP_ADDR="127.0.0.1:8151" EVENTDATA_RELAY_HTTP_ADDR="127.0.0.1:8152"
export EVENTDATA_LOADGEN_URL="http://${EVENTDATA_GRPC_ADDR}"
export RUST_LOG="${RUST_LOG:-warn}"
OUT=target/bench
mkdir -p "$OUT"
say() { echo "[bench] $*" >&2; }
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say "building (release)"
cargo build --release --quiet --bin eventdata --example bench_sql --example relay_bench
BIN=target/release/eventdata
cargo run --release --quiet --example bench_sql -- "$OUT/sql" >&2

say "database ${DB}"
psql "$PG_SUPER/postgres" -qAtc "SELECT 1 FROM pg_database WHERE datname = '${DB}'" | grep -q 1 \
  || psql "$PG_SUPER/postgres" -qc "CREATE DATABASE ${DB} OWNER eventdata_owner TEMPLATE template1"
"$BIN" migrate up >/dev/null

start=$(date +%s.%N)
if [ "${BENCH_SEED:-1}" = 1 ]; then
  say "seeding ${EVENTS} events (${EMBEDDINGS} embedded)"
  "$BIN" seed --org bench --events "$EVENTS" --embeddings "$EMBEDDINGS" | tail -3 >&2
fi
seed_seconds=$(echo "$(date +%s.%N) - $start" | bc)
ORG=$(psql "$DATABASE_ADMIN_URL" -qAtc "SELECT id FROM organizations WHERE slug = 'bench'")
# What this run writes (the create workloads' events, the relay's backlog organization) is deleted at the end, so a
# later BENCH_SEED=0 run reads the seeded data set again rather than it plus every earlier run's creates (which
# had grown the events table to 920,000 rows and moved the planner's estimates).
bench_from=$(psql "$PG_SUPER/$DB" -qAtc "SELECT now()")
# As autovacuum would after a while: statistics, and the visibility map that index-only scans rely on.
psql "$PG_SUPER/$DB" -qc "VACUUM (ANALYZE) events, speakers, companies, topics, event_speakers, event_companies, event_topics"

say "sampling ids for the raw scripts"
psql "$DATABASE_ADMIN_URL" -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
SET LOCAL app.org_id = '${ORG}';
DROP TABLE IF EXISTS bench_events, bench_embedded, bench_speakers, bench_names, bench_countries, bench_words;
CREATE TABLE bench_events AS SELECT row_number() OVER () AS n, id FROM (SELECT id FROM events ORDER BY sort_start, id LIMIT 2000) x;
CREATE TABLE bench_embedded AS SELECT row_number() OVER () AS n, id FROM (SELECT id FROM events WHERE embedding IS NOT NULL ORDER BY sort_start, id LIMIT 50) x;
CREATE TABLE bench_speakers AS SELECT row_number() OVER () AS n, id FROM (SELECT id FROM speakers ORDER BY id LIMIT 1000) x;
-- The names loadgen's lookup workload asks for: the first 1000 speakers' names with the last letter dropped.
CREATE TABLE bench_names AS SELECT row_number() OVER () AS n, left(name, -1) AS name FROM (SELECT name FROM speakers ORDER BY id LIMIT 1000) x;
CREATE TABLE bench_countries (n int, code text);
INSERT INTO bench_countries VALUES (1,'DE'),(2,'FR'),(3,'GB'),(4,'US'),(5,'NL'),(6,'ES'),(7,'JP'),(8,'IN'),(9,'BR'),(10,'CA');
CREATE UNIQUE INDEX ON bench_events (n); CREATE UNIQUE INDEX ON bench_embedded (n); CREATE UNIQUE INDEX ON bench_speakers (n);
CREATE UNIQUE INDEX ON bench_names (n);
GRANT SELECT ON bench_events, bench_embedded, bench_speakers, bench_names, bench_countries TO eventdata_runtime;
-- UUIDv7 as the service makes them (time-ordered), for the raw create scripts.
CREATE OR REPLACE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS \$\$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
\$\$;
GRANT EXECUTE ON FUNCTION bench_uuid7() TO eventdata_runtime;
COMMIT;
SQL
count() { psql "$DATABASE_ADMIN_URL" -qAtc "SELECT count(*) FROM $1"; }
NEVENTS=$(count bench_events); NEMBEDDED=$(count bench_embedded); NSPEAKERS=$(count bench_speakers)
NNAMES=$(count bench_names)

KEY=$("$BIN" keys create --org bench --scopes read,write --name bench 2>/dev/null)
export EVENTDATA_API_KEY="$KEY"
"$BIN" serve >"$OUT/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://${EVENTDATA_HTTP_ADDR}/health/ready" >/dev/null && break; sleep 0.1; done

# Settings the service applies per transaction, applied per session for pgbench.
export PGOPTIONS="-c app.org_id=${ORG} -c hnsw.ef_search=100 -c hnsw.iterative_scan=relaxed_order"
# The search scripts are the true ceiling: run as a superuser (no policy) with the organization as an explicit
# condition, so their indexes are usable (examples/bench_sql.rs); the others run as the runtime role.
raw_url() { case "$1" in text|hybrid|lookup) echo "$PG_SUPER/$DB" ;; *) echo "$DATABASE_URL" ;; esac; }
clients() { if [ "$1" = batch-create ]; then echo "$BATCH_CONCURRENCY"; else echo "$CONCURRENCY"; fi; }
raw() { # workload -> "tps avg_ms p95_ms"
  # The lookup's lean statement is its first step (names at similarity 0.6 or more), which answers most calls.
  local options="$PGOPTIONS" logs
  [ "$1" = lookup ] && options="$options -c pg_trgm.similarity_threshold=0.6"
  logs=$(mktemp -d)
  PGOPTIONS="$options" pgbench -n -M prepared -c "$(clients "$1")" -j 2 -T "$DURATION" -D nevents="$NEVENTS" -D nembedded="$NEMBEDDED" \
    -D nspeakers="$NSPEAKERS" -D nnames="$NNAMES" -D org="$ORG" -f "$OUT/sql/$1.sql" \
    --log --sampling-rate=0.1 --log-prefix="$logs/raw" "$(raw_url "$1")" 2>&1 \
    | awk '/^latency average/ {lat=$4} /^tps/ {tps=$3} END {printf "%.1f %.2f ", tps, lat}'
  # The third field of each logged transaction (one in ten, to keep the log's cost off the ceiling) is its latency
  # in microseconds: the raw statement's own p95 at the same concurrency, the floor under the service's p95.
  cat "$logs"/raw* | awk '{print $3}' | sort -n | awk '{v[NR]=$1} END {printf "%.2f", NR ? v[int(NR*0.95)+1]/1000 : 0}'
  rm -rf "$logs"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# The write path's true ceiling (issue 16): an event row with the columns the API sets, only its primary key and
# one GIN index, no trigger, and its outbox row, in one statement (examples/bench_sql.rs, lean_insert).
psql "$PG_SUPER/$DB" -q -v ON_ERROR_STOP=1 <<'SQL'
DROP TABLE IF EXISTS bench_lean_events;
CREATE TABLE bench_lean_events (
  id uuid PRIMARY KEY, org_id uuid NOT NULL, name text NOT NULL, slug text NOT NULL, description text,
  status text NOT NULL, city text, country text, metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  search tsvector GENERATED ALWAYS AS (to_tsvector('english', name || ' ' || coalesce(description, ''))) STORED);
CREATE INDEX ON bench_lean_events USING gin (search);
SQL
lean() { # -> tps
  pgbench -n -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" -D org="$ORG" -f "$OUT/sql/lean_insert.sql" "$PG_SUPER/$DB" 2>&1 \
    | awk '/^tps/ {printf "%.1f", $3}'
}

results="$OUT/results.tsv"
printf "workload\tclients\tservice_rps\traw_tps\tratio\tp50_ms\tp95_ms\tp99_ms\tmax_ms\traw_avg_ms\traw_p95_ms\titems_s\terrors\n" >"$results"
write_report=""
for w in $WORKLOADS; do
  if [ "$w" = create ]; then
    # The lean insert runs just before the service and again just after its raw script, and the ratio is taken
    # against their mean: fsync-bound, it moved between 3,600 and 8,000 tps within one run (2026-12-03), with the
    # checkpoints after the seed and the relay's backlog. The checkpoint first, so no run inherits the seed's.
    psql "$PG_SUPER/$DB" -qc "CHECKPOINT"
    say "workload create: the lean insert (true ceiling), before the service"
    lean_before=$(lean)
  fi
  say "workload ${w}: service"
  svc=$("$BIN" loadgen --workload "$w" --concurrency "$(clients "$w")" --duration "$DURATION" | grep '^RESULT')
  rps=$(echo "$svc" | field rps)
  if [ -f "$OUT/sql/$w.sql" ]; then
    say "workload ${w}: raw pgbench"
    read -r tps avg p95 <<<"$(raw "$w")"
    ratio=$(echo "scale=2; $rps / $tps" | bc)
    # path's raw script is the best one-statement alternative (examples/bench_sql.rs), not a ceiling: no ratio.
    [ "$w" = path ] && ratio="-"
  else
    tps="-"; avg="-"; p95="-"; ratio="-"
  fi
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$w" "$(clients "$w")" "$rps" "$tps" "$ratio" \
    "$(echo "$svc" | field p50_ms)" "$(echo "$svc" | field p95_ms)" "$(echo "$svc" | field p99_ms)" \
    "$(echo "$svc" | field max_ms)" "$avg" "$p95" "$(echo "$svc" | field items_per_s)" "$(echo "$svc" | field errors)" >>"$results"
  if [ "$w" = create ]; then
    say "workload create: the lean insert (true ceiling), after the service"
    lean_after=$(lean)
    lean_tps=$(echo "scale=1; ($lean_before + $lean_after) / 2" | bc)
    write_report="create: service ${rps} calls/s; the service's statement raw ${tps} tps; lean insert ${lean_tps} tps (${lean_before} before the service, ${lean_after} after); service / lean $(echo "scale=2; $rps / $lean_tps" | bc), schema-raw / lean $(echo "scale=2; $tps / $lean_tps" | bc)"
  fi
done

relay_report="relay: skipped (BENCH_RELAY=0)"; latency_report=""; wakeup_report=""; ahead_report=""
if [ "${BENCH_RELAY:-1}" = 1 ]; then
say "relay: backlog of changes (seed --emit-changes, ${RELAY_EVENTS} events)"
target/release/examples/relay_bench reset --exchange "$EVENTDATA_RELAY_EXCHANGE" >&2
# Start the relay's single partition after everything already in the outbox (the create workload's changes, an
# earlier run's), so the backlog is exactly the changes seeded below.
psql "$PG_SUPER/$DB" -qc "DELETE FROM relay_checkpoints;
  INSERT INTO relay_checkpoints (partitions, partition, txid, position)
  SELECT 1, 0, txid, position FROM outbox ORDER BY txid DESC, position DESC LIMIT 1"
"$BIN" seed --org "relaybench-$(date +%s)" --events "$RELAY_EVENTS" --embeddings 0 --emit-changes | tail -1 >&2
backlog=$(psql "$PG_SUPER/$DB" -qAtc "SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT FROM relay_checkpoints c WHERE (o.txid, o.position) <= (c.txid, c.position))")
avg_bytes=$(psql "$PG_SUPER/$DB" -qAtc "SELECT round(avg(octet_length(payload::text))) FROM (SELECT payload FROM outbox ORDER BY position DESC LIMIT 10000) x")
say "draining ${backlog} changes through eventdata relay"
target/release/examples/relay_bench drain --messages "$backlog" --exchange "$EVENTDATA_RELAY_EXCHANGE" >"$OUT/drain.txt" &
drain_pid=$!
"$BIN" relay >"$OUT/relay.log" 2>&1 &
relay_pid=$!
pids+=("$relay_pid")
wait "$drain_pid"
drain=$(grep '^RESULT' "$OUT/drain.txt")
say "raw publisher: ${backlog} messages of ${avg_bytes} bytes with confirms, timed at the same consumer"
# The relay's rate is the consumer's: messages arriving at the drain, which the broker delivers while it takes
# more. The raw publisher is timed the same way, the same drain started first, and sends messages of the relay's
# shape (its properties and CloudEvents headers, made by the relay's code, and a body of the backlog's average
# size): the broker's work per message is most of the cost, and the headers are most of that.
target/release/examples/relay_bench drain --messages "$backlog" --exchange "$EVENTDATA_RELAY_EXCHANGE" >"$OUT/raw_drain.txt" &
drain_pid=$!
publish_consumed=$(target/release/examples/relay_bench publish --messages "$backlog" --bytes "$avg_bytes" \
  --window "${EVENTDATA_RELAY_MAX_IN_FLIGHT:-4000}" --exchange "$EVENTDATA_RELAY_EXCHANGE" --for-consumer | grep '^RESULT')
wait "$drain_pid"
raw_drain=$(grep '^RESULT' "$OUT/raw_drain.txt")
say "raw publisher alone, bare messages (a body and a content type): ${backlog}, timed at its confirms"
publish=$(target/release/examples/relay_bench publish --messages "$backlog" --bytes "$avg_bytes" --bare \
  --window "${EVENTDATA_RELAY_MAX_IN_FLIGHT:-4000}" --exchange "$EVENTDATA_RELAY_EXCHANGE" | grep '^RESULT')
relay_rate=$(echo "$drain" | field rate); raw_rate=$(echo "$raw_drain" | field rate)
raw_alone_rate=$(echo "$publish" | field rate); raw_consumed_confirms=$(echo "$publish_consumed" | field rate)

latencies=()
for rate in $RATES; do
  say "commit -> consumer latency at ${rate} changes/s for ${DURATION} s"
  latencies+=("$(target/release/examples/relay_bench latency --rate "$rate" --seconds "$DURATION" \
    --exchange "$EVENTDATA_RELAY_EXCHANGE" --url "$EVENTDATA_LOADGEN_URL" --key "$KEY" | grep '^RESULT')")
done
relay_report="relay drain: ${backlog} changes at ${relay_rate}/s at the consumer; raw confirmed publish of the same messages (same window) at the same consumer: ${raw_rate}/s (its confirms ${raw_consumed_confirms}/s); ratio $(echo "scale=2; $relay_rate / $raw_rate" | bc); the raw publisher alone with bare messages, at its confirms: ${raw_alone_rate}/s (ratio $(echo "scale=2; $relay_rate / $raw_alone_rate" | bc))"
# The relay's own count of changes it published while the watermark still held them back (docs/relay.md).
relay_counter() { curl -sf "http://${EVENTDATA_RELAY_HTTP_ADDR}/metrics" | awk -v name="$1" '$1 == name {print $2}'; }
ahead_report="relay, over the drain and the latency runs: $(relay_counter eventdata_relay_published_ahead_total) changes published ahead of the watermark, of $(relay_counter eventdata_relay_published_total) confirmed"

# What waking the relay costs writers: a lean one-statement insert (an event row with one GIN index, and its
# outbox row) with nothing else, with the per-commit NOTIFY trigger the outbox had before migration 0007, with the
# polling that replaced it, and with the relay running (polling and publishing those rows).
say "wake-up cost to writers: lean insert alone, with a NOTIFY trigger, with the relay running"
kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true
lean_alone=$(lean)
psql "$PG_SUPER/$DB" -qc "CREATE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_notify('eventdata_outbox', ''); RETURN NULL; END \$\$;
  CREATE TRIGGER bench_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION bench_notify();"
lean_notify=$(lean)
psql "$PG_SUPER/$DB" -qc "DROP TRIGGER bench_notify ON outbox; DROP FUNCTION bench_notify();"
# The wake-up alone: 1,000 looks a second at the head of the log (the relay's 2 ms poll while changes flow, and a
# change-feed probe as often), without publishing anything.
cat >"$OUT/sql/look.sql" <<'SQL'
SELECT * FROM (SELECT position, txid FROM outbox WHERE (txid, position) > ((SELECT max(txid) FROM outbox), 0)
  ORDER BY outbox.txid, outbox.position LIMIT 500) p WHERE p.txid < pg_snapshot_xmin(pg_current_snapshot());
SELECT pg_sequence_last_value('outbox_position_seq'), pg_snapshot_xmin(pg_current_snapshot());
SQL
PGOPTIONS="-c enable_bitmapscan=off" pgbench -n -M prepared -c 1 -R 500 -T "$((DURATION + 2))" -f "$OUT/sql/look.sql" \
  "$PG_SUPER/$DB" >/dev/null 2>&1 &
look_pid=$!
lean_polled=$(lean)
wait "$look_pid" || true
"$BIN" relay >>"$OUT/relay.log" 2>&1 &
relay_pid=$!
pids+=("$relay_pid")
lean_relay=$(lean)
target/release/examples/relay_bench reset --exchange "$EVENTDATA_RELAY_EXCHANGE" >&2
wakeup_report="lean insert (event + outbox row, one statement): alone ${lean_alone} tps; with a NOTIFY trigger ${lean_notify} tps ($(echo "scale=2; $lean_notify / $lean_alone" | bc)); with 1,000 looks/s at the log ${lean_polled} tps ($(echo "scale=2; $lean_polled / $lean_alone" | bc)); with the relay running and publishing ${lean_relay} tps ($(echo "scale=2; $lean_relay / $lean_alone" | bc))"
latency_report=$(for latency in "${latencies[@]}"; do
  echo "commit -> consumer at $(echo "$latency" | field rate)/s asked ($(echo "$latency" | field probes) probes in $(echo "$latency" | field seconds) s): p50 $(echo "$latency" | field p50_ms) ms, p99 $(echo "$latency" | field p99_ms) ms, max $(echo "$latency" | field max_ms) ms ($(echo "$latency" | field failed) failed); of which transaction start -> create response p50 $(echo "$latency" | field api_p50_ms) / p99 $(echo "$latency" | field api_p99_ms) ms, create response -> consumer p50 $(echo "$latency" | field delivery_p50_ms) / p99 $(echo "$latency" | field delivery_p99_ms) ms (create response -> relay publishes p50 $(echo "$latency" | field relay_p50_ms) / p99 $(echo "$latency" | field relay_p99_ms) ms, split into waiting for the watermark p50 $(echo "$latency" | field watermark_p50_ms) / p99 $(echo "$latency" | field watermark_p99_ms) ms and below the watermark (or committed, if published ahead of it) -> relay publishes p50 $(echo "$latency" | field relay_own_p50_ms) / p99 $(echo "$latency" | field relay_own_p99_ms) ms; relay publishes -> consumer p50 $(echo "$latency" | field broker_p50_ms) / p99 $(echo "$latency" | field broker_p99_ms) ms)"
done)
fi

{
  echo
  echo "eventdata bench $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; PostgreSQL $(psql "$PG_SUPER/postgres" -qAtc 'SHOW server_version')"
  echo "seed: ${EVENTS} events (${EMBEDDINGS} embedded) in ${seed_seconds} s (0 if already seeded)"
  echo "concurrency ${CONCURRENCY}, ${DURATION} s per run; raw = pgbench -M prepared, same SQL, same concurrency"
  echo
  column -t -s $'\t' "$results"
  echo
  echo "$relay_report"
  [ -z "$write_report" ] || echo "$write_report"
  [ -z "$latency_report" ] || echo "$latency_report"
  [ -z "$ahead_report" ] || echo "$ahead_report"
  [ -z "$wakeup_report" ] || echo "$wakeup_report"
} | tee "$OUT/report.txt"

say "removing what this run wrote (events created since ${bench_from} and their changes, relay backlog organizations)"
# The changes too: nothing publishes the bench organization's, and the outbox would only grow. The relay part of a
# later run starts after whatever is left. The RUM index is rebuilt: after mass deletes its inserts walk emptied
# posting pages, and a later BENCH_SEED=0 run would measure that (docs/operations.md, "Index bloat after deletes").
psql "$PG_SUPER/$DB" -q -v ON_ERROR_STOP=1 \
  -c "DELETE FROM events WHERE org_id = '${ORG}' AND created_at >= '${bench_from}'" \
  -c "DELETE FROM outbox WHERE org_id = '${ORG}' AND created_at >= '${bench_from}'" \
  -c "DELETE FROM organizations WHERE slug LIKE 'relaybench-%'" \
  -c "VACUUM (ANALYZE) events" \
  -c "REINDEX INDEX events_search_rum_idx"
