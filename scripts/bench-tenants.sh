#!/usr/bin/env bash
# Similarity search per tenant (docs/performance.md, "Per-tenant vector search"): 10 organizations share the
# events table and its one HNSW index, one of them holding 90% of the embedded events. For the large organization
# and a 1% one it prints the recall of the service's statement against an exact scan (examples/tenant_recall.rs,
# beside the bare HNSW statement the service used before) and SimilarEvents through the service at 4 clients
# (`eventdata loadgen --workload similar`).
#
# Settings (environment): TENANTS_EVENTS (100000, all embedded), TENANTS_CONCURRENCY (4), TENANTS_DURATION
# seconds (15), TENANTS_SEED (1; 0 reuses the seeded database). Needs scripts/setup.sh to have run. Leaves the
# database eventdata_tenants for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${TENANTS_EVENTS:-100000}"
CONCURRENCY="${TENANTS_CONCURRENCY:-4}"
DURATION="${TENANTS_DURATION:-15}"
DB=eventdata_tenants
PG_SUPER="postgres://postgres@127.0.0.1:5432"
export DATABASE_ADMIN_URL="postgres://eventdata_owner@127.0.0.1:5432/${DB}"
export DATABASE_URL="postgres://eventdata_app@127.0.0.1:5432/${DB}"
export EVENTDATA_GRPC_ADDR="127.0.0.1:50161" EVENTDATA_HTTP_ADDR="127.0.0.1:8161"
export EVENTDATA_LOADGEN_URL="http://${EVENTDATA_GRPC_ADDR}"
export RUST_LOG="${RUST_LOG:-warn}"
OUT=target/bench
mkdir -p "$OUT"
say() { echo "[tenants] $*" >&2; }
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say "building (release)"
cargo build --release --quiet --bin eventdata --example tenant_recall
BIN=target/release/eventdata

psql "$PG_SUPER/postgres" -qAtc "SELECT 1 FROM pg_database WHERE datname = '${DB}'" | grep -q 1 \
  || psql "$PG_SUPER/postgres" -qc "CREATE DATABASE ${DB} OWNER eventdata_owner TEMPLATE template1"
"$BIN" migrate up >/dev/null

LARGE=$((EVENTS * 9 / 10)); SMALL=$((EVENTS / 100))
if [ "${TENANTS_SEED:-1}" = 1 ]; then
  # The large organization first: its load builds the HNSW index in bulk; the others insert into it. A generator
  # seed of their own each, so no two organizations hold the same vectors.
  say "seeding tenant-large: ${LARGE} events, all embedded"
  "$BIN" seed --org tenant-large --seed 1 --events "$LARGE" --embeddings "$LARGE" | tail -1 >&2
  rest=$((EVENTS - LARGE))
  for i in 1 2 3 4 5 6 7 8 9; do
    n=$SMALL; [ "$i" = 9 ] && n=$((rest - 8 * SMALL))
    say "seeding tenant-${i}: ${n} events, all embedded"
    "$BIN" seed --org "tenant-${i}" --seed "$((i + 1))" --events "$n" --embeddings "$n" | tail -1 >&2
  done
  psql "$PG_SUPER/$DB" -qc "VACUUM (ANALYZE) events, speakers, companies, topics"
fi

report="$OUT/tenants.txt"
: >"$report"
for org in tenant-1 tenant-large; do
  say "${org}: recall of the service's statement against an exact scan"
  target/release/examples/tenant_recall --org "$org" --samples 100 --k 10 | tee -a "$report" >&2
  say "${org}: SimilarEvents through the service, ${CONCURRENCY} clients, ${DURATION} s"
  KEY=$("$BIN" keys create --org "$org" --scopes read --name "tenants-bench" 2>/dev/null)
  EVENTDATA_API_KEY="$KEY" "$BIN" serve >"$OUT/tenants-serve.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do curl -sf "http://${EVENTDATA_HTTP_ADDR}/health/ready" >/dev/null && break; sleep 0.1; done
  EVENTDATA_API_KEY="$KEY" "$BIN" loadgen --workload similar --concurrency "$CONCURRENCY" --duration "$DURATION" \
    | grep '^RESULT' | sed "s/^RESULT/RESULT org=${org}/" | tee -a "$report"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
say "written to ${report}"
