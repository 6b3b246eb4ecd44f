#!/usr/bin/env bash
# Where each millisecond of a write goes: the service's own CreateEvent and AddEventSpeaker statements
# (examples/bench_sql.rs writes them from the store's SQL builders) run by pgbench against a seeded scratch
# database, once as the schema stands and once with each part taken away: an index, the generated quality and
# search columns, the CHECK constraints, the foreign key to organizations, the row-level-security policy, the
# idempotency claim, the projection, the WAL flush at commit, the relation-count triggers, a fillfactor, the
# inlined SQL functions' bodies as strings (before migration 0018); the full-text index built otherwise (RUM on
# lexeme hashes, GIN); the trigram index on event names that migration 0019 dropped.
#
# Every variant starts from its own copy of one seeded template database (CREATE DATABASE ... TEMPLATE), so no
# variant inherits another's changes and nothing needs rebuilding. The service's statement runs as the runtime
# role with the organization set for the session, as the service runs it.
#
# Settings (environment): PROFILE_EVENTS (20000), PROFILE_EMBEDDINGS (2000), PROFILE_CONCURRENCY (16),
# PROFILE_DURATION seconds per variant (10), PROFILE_SEED (1; 0 reuses the template database),
# PROFILE_ONLY (a substring: run only the variants whose label contains it), PROFILE_STATEMENTS ("create
# add_speaker": which statements' variants to run); a partial run adds its rows to the last run's table.
# Prints a table (and writes target/profile/report.txt). Needs scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${PROFILE_EVENTS:-20000}"
EMBEDDINGS="${PROFILE_EMBEDDINGS:-2000}"
CONCURRENCY="${PROFILE_CONCURRENCY:-16}"
DURATION="${PROFILE_DURATION:-10}"
BASE=eventdata_profile_base
DB=eventdata_profile
PG_SUPER="postgres://postgres@127.0.0.1:5432"
OUT=target/profile
mkdir -p "$OUT"
say() { echo "[profile] $*" >&2; }

say "building (release)"
cargo build --release --quiet --bin eventdata --example bench_sql
BIN=target/release/eventdata
cargo run --release --quiet --example bench_sql -- "$OUT/sql" >/dev/null

exists() { psql "$PG_SUPER/postgres" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1; }
if [ "${PROFILE_SEED:-1}" = 1 ] || ! exists "$BASE"; then
  say "template database ${BASE}: ${EVENTS} events (${EMBEDDINGS} embedded)"
  psql "$PG_SUPER/postgres" -qc "DROP DATABASE IF EXISTS ${BASE}" -c "CREATE DATABASE ${BASE} OWNER eventdata_owner TEMPLATE template1"
  DATABASE_ADMIN_URL="postgres://eventdata_owner@127.0.0.1:5432/${BASE}" "$BIN" migrate up >/dev/null
  DATABASE_ADMIN_URL="postgres://eventdata_owner@127.0.0.1:5432/${BASE}" DATABASE_URL="postgres://eventdata_app@127.0.0.1:5432/${BASE}" \
    "$BIN" seed --org profile --events "$EVENTS" --embeddings "$EMBEDDINGS" | tail -1 >&2
  psql "$PG_SUPER/$BASE" -q -v ON_ERROR_STOP=1 <<'SQL'
-- UUIDv7 as the service makes them (time-ordered), so the btree inserts land where the service's do.
CREATE FUNCTION profile_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
$$;
CREATE TABLE profile_events AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM events;
-- One speaker of its own per pgbench client: relation adds never repeat a pair.
CREATE TABLE profile_speakers AS
  SELECT n, gen_random_uuid() AS id FROM generate_series(1, 64) n;
INSERT INTO speakers (id, org_id, name)
  SELECT s.id, o.id, 'Profile Speaker ' || s.n FROM profile_speakers s, organizations o WHERE o.slug = 'profile';
CREATE UNIQUE INDEX ON profile_events (n);
CREATE UNIQUE INDEX ON profile_speakers (n);
GRANT SELECT ON profile_events, profile_speakers TO eventdata_runtime;
GRANT EXECUTE ON FUNCTION profile_uuid7() TO eventdata_runtime;
-- The lean ceiling of issue 16: an event row with the columns the API sets, its outbox row, one statement, no
-- trigger, only the primary key and one GIN index.
CREATE TABLE profile_lean_events (
  id uuid PRIMARY KEY, org_id uuid NOT NULL, name text NOT NULL, slug text NOT NULL, description text,
  status text NOT NULL, city text, country text, metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  search tsvector GENERATED ALWAYS AS (to_tsvector('english', name || ' ' || coalesce(description, ''))) STORED);
CREATE INDEX ON profile_lean_events USING gin (search);
VACUUM (ANALYZE);
SQL
fi
ORG=$(psql "$PG_SUPER/$BASE" -qAtc "SELECT id FROM organizations WHERE slug = 'profile'")
NEVENTS=$(psql "$PG_SUPER/$BASE" -qAtc "SELECT count(*) FROM profile_events")
cat >"$OUT/sql/profile_lean_insert.sql" <<'SQL'
WITH e AS (
  INSERT INTO profile_lean_events (id, org_id, name, slug, description, status, city, country)
  SELECT u, current_org_id(), 'Lean event ' || u, 'lean-' || replace(u::text, '-', ''), 'a lean event', 'draft', 'Berlin', 'DE'
  FROM (SELECT profile_uuid7() AS u) g
  RETURNING id, org_id, name)
INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload)
SELECT org_id, 'event', id, 'event.created', jsonb_build_object('id', id, 'name', name) FROM e;
SQL

results="$OUT/results.tsv"
# A partial run (PROFILE_ONLY, PROFILE_STATEMENTS) adds its rows to the last run's table.
if [ -z "${PROFILE_ONLY:-}${PROFILE_STATEMENTS:-}" ] || [ ! -f "$results" ]; then
  printf "statement\tvariant\ttps\tavg_ms\n" >"$results"
fi
statement_of() { case "$1" in profile_add_speaker) echo add_speaker ;; *) echo create ;; esac; }
# variant LABEL SCRIPT ROLE SETUP_SQL [PGOPTIONS...]
variant() {
  local label="$1" script="$2" role="$3" setup="$4" options="${5:-}"
  case "$label" in *"${PROFILE_ONLY:-}"*) ;; *) return 0 ;; esac
  case " ${PROFILE_STATEMENTS:-create add_speaker} " in *" $(statement_of "$script") "*) ;; *) return 0 ;; esac
  say "${script#profile_}: ${label}"
  psql "$PG_SUPER/postgres" -qc "DROP DATABASE IF EXISTS ${DB}" -c "CREATE DATABASE ${DB} TEMPLATE ${BASE} OWNER eventdata_owner"
  # Statement by statement (not -c, which runs them as one transaction): VACUUM FULL cannot run inside one.
  [ -z "$setup" ] || psql "$PG_SUPER/$DB" -q -v ON_ERROR_STOP=1 <<<"${setup};"
  psql "$PG_SUPER/$DB" -qc "CHECKPOINT"
  local out
  out=$(PGOPTIONS="-c app.org_id=${ORG} ${options}" pgbench -n -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" \
    -D i=0 -D nevents="$NEVENTS" -f "$OUT/sql/${script}.sql" "postgres://${role}@127.0.0.1:5432/${DB}" 2>&1) || true
  if ! echo "$out" | grep -q '^tps' || echo "$out" | grep -q 'aborted'; then echo "$out" >&2; exit 1; fi
  printf "%s\t%s\t%s\n" "$(statement_of "$script")" "$label" \
    "$(echo "$out" | awk '/^latency average/ {lat=$4} /^tps/ {tps=$3} END {printf "%.1f\t%.2f", tps, lat}')" >>"$results"
}
# Drops every CHECK constraint of a table.
drop_checks() {
  echo "DO \$\$ DECLARE c record; BEGIN FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = '$1'::regclass AND contype = 'c' LOOP EXECUTE format('ALTER TABLE $1 DROP CONSTRAINT %I', c.conname); END LOOP; END \$\$"
}
# The indexes of a table that back no constraint.
plain_indexes() {
  psql "$PG_SUPER/$BASE" -qAtc "SELECT i.indexrelid::regclass FROM pg_index i WHERE i.indrelid = '$1'::regclass
    AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1"
}

APP=eventdata_app
variant "as the service runs it" profile_create "$APP" ""
variant "with an idempotency claim (request_id set)" profile_create_claim "$APP" ""
variant "projection left out (RETURNING id, payload {id})" profile_create_lean_payload "$APP" ""
variant "as a superuser (no row-level security)" profile_create postgres ""
variant "synchronous_commit off (no WAL flush wait)" profile_create "$APP" "" "-c synchronous_commit=off"
variant "without the foreign keys to organizations" profile_create "$APP" \
  "ALTER TABLE events DROP CONSTRAINT events_org_id_fkey; ALTER TABLE outbox DROP CONSTRAINT outbox_org_id_fkey"
variant "without CHECK constraints (events, outbox)" profile_create "$APP" "$(drop_checks events); $(drop_checks outbox)"
variant "quality_score/quality_reasons stored, not computed (index kept)" profile_create "$APP" \
  "ALTER TABLE events DROP COLUMN quality_score CASCADE, DROP COLUMN quality_reasons CASCADE;
   ALTER TABLE events ADD COLUMN quality_score float8 NOT NULL DEFAULT 0, ADD COLUMN quality_reasons text[] NOT NULL DEFAULT '{}';
   CREATE INDEX events_org_quality_idx ON events (org_id, quality_score, id)"
variant "without the search column (and its RUM index)" profile_create "$APP" "ALTER TABLE events DROP COLUMN search CASCADE"
# The SQL functions that statements inline with their bodies as strings, parsed each time a statement starts
# (before migration 0018): the quality functions of the generated columns among them.
variant "function bodies as strings (before migration 0018)" profile_create "$APP" \
  "$(cat migrations/0018_function_bodies_parsed_once.down.sql)"
# The full-text index built otherwise: RUM keyed by lexeme hashes (no prefix search, which no query uses), and the
# GIN index RUM replaced (its pending list batches new rows' lexemes; it cannot order by rank).
variant "search index: RUM rum_tsvector_hash_ops" profile_create "$APP" \
  "DROP INDEX events_search_rum_idx; CREATE INDEX events_search_rum_idx ON events USING rum (search rum_tsvector_hash_ops)"
variant "search index: GIN (fastupdate) instead of RUM" profile_create "$APP" \
  "DROP INDEX events_search_rum_idx; CREATE INDEX events_search_gin_idx ON events USING gin (search)"
# The trigram index on event names that migration 0019 dropped (no read path used it), put back as 0001 made it.
variant "with the trigram name index (before migration 0019)" profile_create "$APP" \
  "$(cat migrations/0019_events_name_trigram_index_dropped.down.sql)"
all_indexes=""
for index in $(plain_indexes events) $(plain_indexes outbox); do
  variant "without index ${index}" profile_create "$APP" "DROP INDEX ${index}"
  all_indexes="${all_indexes}DROP INDEX ${index}; "
done
variant "without every index that backs no constraint" profile_create "$APP" "$all_indexes"
variant "the lean insert (issue 16's ceiling, superuser)" profile_lean_insert postgres ""
# The first variant once more: how far two runs of the same thing differ on this machine right now.
variant "as the service runs it (again, for the noise)" profile_create "$APP" ""

variant "as the service runs it" profile_add_speaker "$APP" ""
variant "count triggers as before migration 0008 (dynamic SQL, planned per call)" profile_add_speaker "$APP" \
  "$(cat migrations/0008_relation_counts_static.down.sql)"
variant "without the relation-count triggers" profile_add_speaker "$APP" \
  "ALTER TABLE event_speakers DISABLE TRIGGER event_speakers_counted_insert"
variant "events and speakers at fillfactor 80 (count updates can stay HOT)" profile_add_speaker "$APP" \
  "ALTER TABLE events SET (fillfactor = 80); ALTER TABLE speakers SET (fillfactor = 80); VACUUM FULL events, speakers"
variant "without the quality indexes of events and speakers" profile_add_speaker "$APP" \
  "DROP INDEX events_org_quality_idx, speakers_org_quality_idx"
variant "function bodies as strings (before migration 0018)" profile_add_speaker "$APP" \
  "$(cat migrations/0018_function_bodies_parsed_once.down.sql)"
variant "as a superuser (no row-level security)" profile_add_speaker postgres ""
psql "$PG_SUPER/postgres" -qc "DROP DATABASE IF EXISTS ${DB}"

{
  echo
  echo "eventdata write profile $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores; ${EVENTS} events (${EMBEDDINGS} embedded); ${CONCURRENCY} clients, ${DURATION} s per variant"
  echo
  awk -F'\t' 'NR == 1 {print $0 "\tvs first"; next}
    {if (!($1 in first)) first[$1] = $3; printf "%s\t%s\t%s\t%s\t%.2f\n", $1, $2, $3, $4, $3 / first[$1]}' "$results" \
    | column -t -s $'\t'
} | tee "$OUT/report.txt"
