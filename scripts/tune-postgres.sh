#!/usr/bin/env bash
# Server settings for bulk loads (the 1M-event seed in docs/performance.md), applied with ALTER SYSTEM and undone
# with `--reset`; both restart the local cluster, since shared_buffers and wal_buffers take effect only then.
#
#   scripts/tune-postgres.sh          # apply
#   scripts/tune-postgres.sh --reset  # back to the configuration files' values (ALTER SYSTEM RESET)
#   scripts/tune-postgres.sh --show   # print the settings below as the server has them
#
# What each setting buys, on a 2-core, 24 GiB machine with one local disk:
#   shared_buffers 4GB      the events table and its indexes stay in memory while a load grows them
#   wal_buffers 64MB        a batch's WAL is written in large pieces instead of whenever 16 MB fill up
#   max_wal_size 16GB       no checkpoint forced by WAL volume during a load (each one writes every dirty page
#   min_wal_size 2GB        and then every first change of a page goes to the WAL in full again)
#   checkpoint_timeout 30min
#   wal_compression lz4     those full-page images compressed
#   maintenance_work_mem 2GB  index builds (the seed's HNSW and any index it rebuilds) sort in memory
# Nothing here weakens durability: synchronous_commit and fsync keep their values (the seed turns off waiting
# for the WAL flush for its own transactions only, and re-checks batches on a rerun).
set -euo pipefail
PG_SUPER="${PG_SUPER:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_MAJOR="${PG_MAJOR:-15}"
SETTINGS=(
  "shared_buffers=4GB"
  "wal_buffers=64MB"
  "max_wal_size=16GB"
  "min_wal_size=2GB"
  "checkpoint_timeout=30min"
  "wal_compression=lz4"
  "maintenance_work_mem=2GB"
)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
say() { echo "[tune-postgres] $*" >&2; }
restart() {
  say "restarting the ${PG_MAJOR}/main cluster"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main restart
  for _ in $(seq 1 100); do psql "$PG_SUPER" -qAtc "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "the cluster did not come back"; return 1
}
show() {
  for setting in "${SETTINGS[@]}"; do
    name="${setting%%=*}"
    echo "${name} = $(psql "$PG_SUPER" -qAtc "SHOW ${name}")"
  done
}

case "${1:-}" in
  --show) show ;;
  --reset)
    for setting in "${SETTINGS[@]}"; do psql "$PG_SUPER" -qc "ALTER SYSTEM RESET ${setting%%=*}"; done
    restart
    show
    ;;
  "")
    for setting in "${SETTINGS[@]}"; do
      psql "$PG_SUPER" -qc "ALTER SYSTEM SET ${setting%%=*} = '${setting#*=}'"
    done
    restart
    show
    ;;
  *) echo "usage: $0 [--reset|--show]" >&2; exit 2 ;;
esac
