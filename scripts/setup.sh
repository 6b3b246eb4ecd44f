#!/usr/bin/env bash
# Idempotent machine setup for eventdata on Debian: safe to run again at any time.
#  1. installs PostgreSQL 15, RabbitMQ and the build tools when absent;
#  2. builds pgvector from Debian's `pgvector` source package when the `vector` extension is missing;
#  3. starts PostgreSQL and RabbitMQ when they are down;
#  4. creates the roles and the database, then runs the migrations.
# Runs as root (or through sudo). Every step says what it does.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
DB_NAME="${EVENTDATA_DB_NAME:-eventdata}"
OWNER_ROLE="${EVENTDATA_OWNER_ROLE:-eventdata_owner}"
APP_ROLE="${EVENTDATA_APP_ROLE:-eventdata_app}"
RELAY_ROLE="${EVENTDATA_RELAY_ROLE:-eventdata_relay}"
SKIP_MIGRATE="${SKIP_MIGRATE:-0}"

say() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
psql_su() { PGOPTIONS='-c client_min_messages=warning' as_postgres psql -X -q -v ON_ERROR_STOP=1 "$@"; }

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then say "apt-get update"; $SUDO apt-get update -qq; apt_updated=1; fi
}
install_missing() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_update_once
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# --- 1. packages -----------------------------------------------------------------------------------
# postgresql-15-rum: the full-text index that returns matches in rank order (docs/search.md). pgbouncer: the
# transaction-mode pooler the pooler test runs in front of the cluster (its own instance; the package's service is
# not used).
install_missing "postgresql-${PG_MAJOR}" postgresql-contrib "postgresql-${PG_MAJOR}-rum" rabbitmq-server build-essential \
  dpkg-dev pgbouncer

cluster_running() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_MAJOR" '$1==v && $2=="main" {print $4}' | grep -q online; }
start_postgres() {
  if cluster_running; then say "PostgreSQL ${PG_MAJOR} is running"; return; fi
  say "starting PostgreSQL ${PG_MAJOR}"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start
}

# --- 2. pgvector -----------------------------------------------------------------------------------
vector_available() {
  [ -f "$($PG_CONFIG --sharedir)/extension/vector.control" ] && [ -f "$($PG_CONFIG --pkglibdir)/vector.so" ]
}
# The trixie deb-src entry reuses the mirror this machine's apt already uses, so no host is hard-coded.
add_trixie_sources() {
  local list=/etc/apt/sources.list.d/eventdata-trixie-src.sources
  [ -f "$list" ] && return
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n 1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n 1 || true)
  fi
  [ -n "$uri" ] || { say "cannot find a Debian mirror in the apt sources"; exit 1; }
  say "adding a trixie deb-src entry ($list)"
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" | $SUDO tee "$list" >/dev/null
  apt_updated=0
}
build_pgvector() {
  if vector_available; then say "pgvector is installed"; return; fi
  install_missing "postgresql-server-dev-${PG_MAJOR}"
  add_trixie_sources
  apt_update_once
  local work; work=$(mktemp -d)
  say "building pgvector from Debian's source package in $work"
  (
    cd "$work"
    apt-get source --download-only -qq pgvector >/dev/null
    dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null
    cd src
    # OPTFLAGS="" drops -march=native so the library loads on any x86-64 CPU.
    make -s USE_PGXS=1 PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
    $SUDO make -s USE_PGXS=1 PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >/dev/null
  )
  rm -rf "$work"
  # Installing the server headers can upgrade the PostgreSQL minor version: restart so files and server agree.
  if cluster_running; then say "restarting PostgreSQL after the pgvector install"; $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main restart; fi
}
build_pgvector

# --- 3. services -----------------------------------------------------------------------------------
start_postgres
for _ in $(seq 1 60); do as_postgres pg_isready -q && break; sleep 0.5; done
as_postgres pg_isready -q || { say "PostgreSQL did not become ready"; exit 1; }

if $SUDO rabbitmqctl -q status >/dev/null 2>&1; then
  say "RabbitMQ is running"
else
  say "starting RabbitMQ"
  $SUDO rabbitmq-server -detached
fi
$SUDO rabbitmqctl -q await_startup --timeout 60 >/dev/null

# --- Python packages of the consumer examples (their tests run them) ---------------------------------------
examples=$(cd "$(dirname "$0")/.." && pwd)/examples
if ! python3 -c 'import aio_pika, jsonschema, baml_py, grpc_tools' 2>/dev/null; then
  say "installing the Python packages of the consumer and extraction examples"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    -r "$examples/consumers/python/requirements.txt" -r "$examples/extraction/requirements.txt"
fi

# --- 4. roles, database, migrations ----------------------------------------------------------------
say "ensuring roles ${OWNER_ROLE}, ${APP_ROLE}, ${RELAY_ROLE}, eventdata_backup and database ${DB_NAME}"
psql_su -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${OWNER_ROLE}') THEN
    CREATE ROLE ${OWNER_ROLE} LOGIN CREATEDB PASSWORD 'eventdata';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
    CREATE ROLE ${APP_ROLE} LOGIN NOBYPASSRLS PASSWORD 'eventdata';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${RELAY_ROLE}') THEN
    CREATE ROLE ${RELAY_ROLE} LOGIN NOBYPASSRLS PASSWORD 'eventdata';
  END IF;
  -- Backups: reads every row of every organization (row-level security is forced on the tables), writes nothing.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventdata_backup') THEN
    CREATE ROLE eventdata_backup LOGIN BYPASSRLS PASSWORD 'eventdata';
  END IF;
  -- Migrations grant to these group roles; the owner must be able to hand them out.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventdata_runtime') THEN
    CREATE ROLE eventdata_runtime NOLOGIN NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventdata_relayer') THEN
    CREATE ROLE eventdata_relayer NOLOGIN NOBYPASSRLS;
  END IF;
  -- Owns the search functions (SECURITY DEFINER): a policy lets it read every row, so non-leakproof operators
  -- (full text, trigram) can use their indexes; each function adds the caller's organization itself.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventdata_searcher') THEN
    CREATE ROLE eventdata_searcher NOLOGIN NOBYPASSRLS;
  END IF;
END
\$\$;
GRANT pg_read_all_data TO eventdata_backup;
GRANT eventdata_runtime TO ${APP_ROLE};
GRANT eventdata_relayer TO ${RELAY_ROLE};
GRANT eventdata_runtime TO ${OWNER_ROLE} WITH ADMIN OPTION;
GRANT eventdata_relayer TO ${OWNER_ROLE} WITH ADMIN OPTION;
-- The owner hands its search functions over to eventdata_searcher, which needs membership (migration 0005 keeps
-- the owner inside its organization with a restrictive policy all the same).
GRANT eventdata_searcher TO ${OWNER_ROLE};
SELECT 'CREATE DATABASE ${DB_NAME} OWNER ${OWNER_ROLE}'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DB_NAME}') \gexec
SQL
# Extensions need a superuser once per database; template1 makes every new (test) database inherit them.
for db in template1 "$DB_NAME"; do
  psql_su -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE EXTENSION IF NOT EXISTS rum; CREATE EXTENSION IF NOT EXISTS btree_gin;'
done

if [ "$SKIP_MIGRATE" != 1 ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  say "running migrations"
  RUST_LOG="${RUST_LOG:-warn}" DATABASE_ADMIN_URL="${DATABASE_ADMIN_URL:-postgres://${OWNER_ROLE}@127.0.0.1:5432/${DB_NAME}}" \
    cargo run --quiet --manifest-path "$here/Cargo.toml" -- migrate up
fi
say "done"
