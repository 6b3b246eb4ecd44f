//! `eventdata backup` / `eventdata restore`: a consistent `pg_dump -Fc` with a manifest of row counts and
//! checksums, and a parallel `pg_restore -j` into a new database that is then checked against the manifest.
//!
//! Consistency: the manifest and the dump read the same snapshot. The backup opens a REPEATABLE READ
//! transaction, exports its snapshot and hands it to `pg_dump --snapshot`, so the counts describe exactly the
//! rows in the file even while the service keeps writing.
//!
//! Roles: row-level security is forced on every tenant table, so the owner cannot dump them; backups run as
//! `eventdata_backup` (BYPASSRLS, `pg_read_all_data`, nothing else; scripts/setup.sh creates it) and restores as
//! a superuser (they create a database and the `vector` extension). docs/operations.md has the runbook.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

/// Row count and content checksum of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    pub table: String,
    pub rows: i64,
    /// Sum of the first 64 bits of each row's md5, as a decimal: independent of row order and physical layout.
    pub checksum: String,
}

/// What a backup file holds, written next to it as `<file>.manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub database: String,
    pub server_version: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub tables: Vec<TableDigest>,
}

/// One table's comparison after a restore.
#[derive(Debug, Clone)]
pub struct TableCheck {
    pub expected: TableDigest,
    pub restored: Option<TableDigest>,
}

impl TableCheck {
    pub fn matches(&self) -> bool {
        self.restored.as_ref() == Some(&self.expected)
    }
}

/// Where the manifest of backup `file` lives.
pub fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// Settings that make `row::text` render the same on every session (time zone, float and bytea output).
const CANONICAL_OUTPUT: &str =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 1; SET bytea_output = 'hex'";

/// Row counts and checksums of every table in the `public` schema, in name order, read in `conn`'s snapshot.
pub async fn digest(conn: &mut PgConnection) -> anyhow::Result<Vec<TableDigest>> {
    sqlx::raw_sql(CANONICAL_OUTPUT).execute(&mut *conn).await?;
    let tables = sqlx::query_scalar!(
        r#"SELECT tablename::text AS "table!" FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"#
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut digests = Vec::with_capacity(tables.len());
    for table in tables {
        let (rows, checksum): (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text \
             FROM public.{} t",
            quote_ident(&table)
        )))
        .fetch_one(&mut *conn)
        .await
        .with_context(|| format!("reading table {table}"))?;
        digests.push(TableDigest { table, rows, checksum });
    }
    Ok(digests)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Dumps the database at `url` to `out` (custom format) and writes the manifest beside it.
pub async fn backup(url: &str, out: &Path) -> anyhow::Result<Manifest> {
    let mut conn = PgConnection::connect(url).await.context("cannot connect with EVENTDATA_BACKUP_URL")?;
    let mut tx = conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    let source = sqlx::query!(
        r#"SELECT pg_export_snapshot() AS "snapshot!", current_database()::text AS "database!",
                  current_setting('server_version') AS "server_version!""#
    )
    .fetch_one(&mut *tx)
    .await?;
    let (snapshot, database, server_version) = (source.snapshot, source.database, source.server_version);
    let dump = tokio::process::Command::new("pg_dump")
        .args(["--format=custom", "--snapshot", &snapshot, "--file"])
        .arg(out)
        .arg(format!("--dbname={url}"))
        .stdin(Stdio::null())
        .spawn()
        .context("cannot run pg_dump (install postgresql-client)")?;
    // The snapshot stays importable while this transaction is open: digest in it while pg_dump reads.
    let tables = digest(&mut tx).await?;
    let status = dump.wait_with_output().await?.status;
    tx.commit().await?;
    if !status.success() {
        bail!("pg_dump failed ({status})");
    }
    let manifest = Manifest { database, server_version, created_at: chrono::Utc::now(), tables };
    std::fs::write(manifest_path(out), serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("cannot write {}", manifest_path(out).display()))?;
    Ok(manifest)
}

/// Restores backup `file` into a new database `database` on the server of `admin_url` (a superuser's
/// connection to any database there), with `jobs` parallel pg_restore workers, then compares every table with
/// the manifest.
pub async fn restore(admin_url: &str, file: &Path, database: &str, jobs: usize) -> anyhow::Result<Vec<TableCheck>> {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(manifest_path(file))
            .with_context(|| format!("cannot read {} (written by backup)", manifest_path(file).display()))?,
    )?;
    if !database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || database.is_empty() {
        bail!("database name {database:?}: use letters, digits and underscores");
    }
    let mut admin = PgConnection::connect(admin_url).await.context("cannot connect with EVENTDATA_RESTORE_URL")?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1::text) AS "exists!""#,
        database
    )
    .fetch_one(&mut admin)
    .await?;
    if exists {
        bail!("database {database} exists: restore into a new database (drop it first to replace it)");
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database} TEMPLATE template0")))
        .execute(&mut admin)
        .await?;
    let target = with_database(admin_url, database);
    let status = tokio::process::Command::new("pg_restore")
        .args(["--exit-on-error", "--jobs", &jobs.max(1).to_string()])
        .arg(format!("--dbname={target}"))
        .arg(file)
        .stdin(Stdio::null())
        .status()
        .await
        .context("cannot run pg_restore (install postgresql-client)")?;
    if !status.success() {
        bail!("pg_restore failed ({status}); database {database} is incomplete: drop it before retrying");
    }
    let mut restored = PgConnection::connect(&target).await?;
    let mut found = digest(&mut restored).await?;
    Ok(manifest
        .tables
        .into_iter()
        .map(|expected| {
            let restored = found.iter().position(|d| d.table == expected.table).map(|i| found.swap_remove(i));
            TableCheck { expected, restored }
        })
        .collect())
}

/// `url` with its database (the path) replaced by `database`, query string kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=require", "x"), "postgres://u:p@h/x?sslmode=require");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn the_manifest_sits_beside_the_dump() {
        assert_eq!(manifest_path(Path::new("/b/eventdata.dump")), PathBuf::from("/b/eventdata.dump.manifest.json"));
    }
}
