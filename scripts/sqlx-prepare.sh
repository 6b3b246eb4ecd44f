#!/usr/bin/env bash
# Writes .sqlx/, the offline query data that `sqlx::query!`, `query_scalar!` and `static_query_as!` (services/db.rs)
# check static statements against when the crate compiles: one file per statement, made by describing it on a
# migrated database. Run it after changing a static statement or a migration; `--check` compares instead of writing
# (the test command runs it, so stale data fails CI). Needs scripts/setup.sh to have run (the `eventdata` database,
# migrated). SQLX_PREPARE_DATABASE_URL picks another database.
set -euo pipefail
cd "$(dirname "$0")/.."

URL="${SQLX_PREPARE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/eventdata}"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
# The macros write their data while they expand: make cargo expand them again, describing each statement live.
touch services/lib.rs
SQLX_OFFLINE=false DATABASE_URL="$URL" SQLX_OFFLINE_DIR="$fresh" cargo check --quiet --lib
if [ "${1:-}" = "--check" ]; then
  if ! diff -r -q .sqlx "$fresh" >/dev/null; then
    diff -r .sqlx "$fresh" | head -40 >&2 || true
    echo "sqlx-prepare: .sqlx/ differs from the schema and statements; run scripts/sqlx-prepare.sh and commit .sqlx/" >&2
    exit 1
  fi
  echo "sqlx-prepare: .sqlx/ is current ($(ls "$fresh" | wc -l) statements)"
else
  rm -rf .sqlx
  cp -r "$fresh" .sqlx
  echo "sqlx-prepare: wrote $(ls .sqlx | wc -l) statements to .sqlx/"
fi
