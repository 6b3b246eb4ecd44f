-- First-start initialisation for the PostgreSQL container of docker-compose.yml: the same roles, database and
-- extensions that scripts/setup.sh makes on a Debian machine. Passwords here are for local development only.
CREATE ROLE eventdata_owner LOGIN CREATEDB PASSWORD 'eventdata';
CREATE ROLE eventdata_app LOGIN NOBYPASSRLS PASSWORD 'eventdata';
CREATE ROLE eventdata_relay LOGIN NOBYPASSRLS PASSWORD 'eventdata';
CREATE ROLE eventdata_runtime NOLOGIN NOBYPASSRLS;
CREATE ROLE eventdata_relayer NOLOGIN NOBYPASSRLS;
-- Owns the search functions (docs/search.md): reads every row through its own policy, adds the organization itself.
CREATE ROLE eventdata_searcher NOLOGIN NOBYPASSRLS;
-- Backups (eventdata backup): reads every organization's rows, writes nothing.
CREATE ROLE eventdata_backup LOGIN BYPASSRLS PASSWORD 'eventdata';
GRANT pg_read_all_data TO eventdata_backup;
GRANT eventdata_runtime TO eventdata_app;
GRANT eventdata_relayer TO eventdata_relay;
GRANT eventdata_runtime TO eventdata_owner WITH ADMIN OPTION;
GRANT eventdata_relayer TO eventdata_owner WITH ADMIN OPTION;
-- Membership to hand the search functions over (migration 0005 keeps the owner inside its organization).
GRANT eventdata_searcher TO eventdata_owner;
CREATE DATABASE eventdata OWNER eventdata_owner;
\connect template1
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS rum;
CREATE EXTENSION IF NOT EXISTS btree_gin;
\connect eventdata
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS rum;
CREATE EXTENSION IF NOT EXISTS btree_gin;
