#!/usr/bin/env bash
# A streaming standby of the local PostgreSQL cluster, for the read-replica tests (tests/replica.rs): a second
# cluster `standby` on port 5433 (EVENTDATA_STANDBY_PORT), made with pg_basebackup -R from `main`, hot standby.
# Idempotent: an existing standby is started if stopped and left as it is otherwise. Run as root or with sudo.
#   bash scripts/standby.sh          # make or start it
#   bash scripts/standby.sh drop     # remove it
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-$(ls /etc/postgresql | sort -V | tail -1)}"
PORT="${EVENTDATA_STANDBY_PORT:-5433}"
NAME=standby
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
say() { echo "[standby] $*" >&2; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
status() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_MAJOR" -v n="$NAME" '$1==v && $2==n {print $4}'; }

if [ "${1:-}" = drop ]; then
  if [ -n "$(status)" ]; then $SUDO pg_dropcluster --stop "$PG_MAJOR" "$NAME"; say "dropped"; fi
  exit 0
fi

# The primary accepts replication connections from this host (trust, like the rest of the local setup).
hba="/etc/postgresql/${PG_MAJOR}/main/pg_hba.conf"
if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
  say "allowing replication connections on the primary"
  echo "host replication all 127.0.0.1/32 trust" | $SUDO tee -a "$hba" >/dev/null
  as_postgres psql -X -q -p 5432 -c "SELECT pg_reload_conf()" >/dev/null
fi

data="/var/lib/postgresql/${PG_MAJOR}/${NAME}"
conf="/etc/postgresql/${PG_MAJOR}/${NAME}"
if [ -z "$(status)" ]; then
  say "creating cluster ${PG_MAJOR}/${NAME} on port ${PORT}"
  $SUDO pg_createcluster "$PG_MAJOR" "$NAME" -p "$PORT" >/dev/null
fi
# A cluster without standby.signal is new (or an interrupted earlier run): its data is replaced by a base backup.
if ! $SUDO test -f "${data}/standby.signal"; then
  say "base backup of main into ${data}"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$NAME" stop 2>/dev/null || true
  $SUDO install -d -o postgres -g postgres -m 700 "$data"
  $SUDO find "$data" -mindepth 1 -delete
  as_postgres pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D "$data" -R -X stream -c fast
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' | $SUDO tee "${conf}/pg_hba.conf" >/dev/null
  printf "listen_addresses = '127.0.0.1'\nhot_standby = on\n" | $SUDO tee "${conf}/conf.d/standby.conf" >/dev/null
fi
if [[ "$(status)" != online* ]]; then
  say "starting ${PG_MAJOR}/${NAME}"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$NAME" start
fi
# Streaming, not only in recovery: a standby stopped for long may need WAL the primary has since recycled (there is
# no replication slot, so a forgotten standby never fills the primary's disk); then it is made again.
streaming() {
  [ "$(psql -X -h 127.0.0.1 -p "$PORT" -U postgres -qAtc "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'" 2>/dev/null)" = 1 ]
}
for _ in $(seq 1 100); do
  if streaming; then
    say "streaming standby on port ${PORT}"
    exit 0
  fi
  sleep 0.2
done
if [ "${EVENTDATA_STANDBY_REMADE:-0}" = 0 ]; then
  say "the standby does not stream (see /var/log/postgresql/postgresql-${PG_MAJOR}-${NAME}.log): making it again"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$NAME" stop 2>/dev/null || true
  $SUDO rm -f "${data}/standby.signal"
  EVENTDATA_STANDBY_REMADE=1 exec bash "$0" "$@"
fi
say "the standby on port ${PORT} does not stream (see /var/log/postgresql/postgresql-${PG_MAJOR}-${NAME}.log)"
exit 1
