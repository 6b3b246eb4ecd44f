//! PostgreSQL pools, migrations, and the per-organization transaction that makes row-level security apply.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::config::{DatabaseSettings, Pooler};

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Set once a pool behind a transaction-mode pooler exists in this process: statements are then never prepared
/// under a name (`named_statements`).
static BEHIND_TRANSACTION_POOLER: AtomicBool = AtomicBool::new(false);

/// Whether statements may be prepared under a name and cached on their connection. Not behind a transaction-mode
/// pooler: a server connection there serves other clients between our transactions and keeps none of our
/// statements (PgBouncer before 1.21), so a cached name would be missing, or clash with another client's. Every
/// statement of the service passes this to `persistent(..)`; unnamed statements are parsed and planned per
/// execution, and only inside a transaction (the pooler may switch servers between an unnamed Parse and its
/// Bind otherwise), which `App` and the few reads outside it ensure.
pub fn named_statements() -> bool {
    !BEHIND_TRANSACTION_POOLER.load(Ordering::Relaxed)
}

/// A static statement returning rows of `$row` (a `sqlx::FromRow` struct), checked when the crate compiles:
/// `sqlx::query_as!` checks the SQL against the schema, each argument against its parameter and each column
/// against `$row`'s field of that name, using the offline query data committed in `.sqlx/` (so a build needs no
/// database; `scripts/sqlx-prepare.sh` writes it). The statement runs as `sqlx::query_as` on the same text, the
/// form that can be left unnamed behind a pooler ([`named_statements`]): the value `query_as!` builds cannot be
/// (sqlx 0.9 offers no `persistent` on it), so the checked copy is compiled and never executed. A column the
/// checker cannot prove NOT NULL (a function's or a UNION's output) carries sqlx's `!` override in its alias,
/// and its field the same name (`#[sqlx(rename = "kind!")]`). Static statements with one column or none use
/// `sqlx::query_scalar!` and `sqlx::query!` directly, which take `persistent`.
#[macro_export]
macro_rules! static_query_as {
    ($row:path, $sql:literal $(, $arg:expr)* $(,)?) => {{
        if false {
            let _ = ::sqlx::query_as!($row, $sql $(, $arg)*);
        }
        ::sqlx::query_as::<_, $row>($sql)$(.bind($arg))*.persistent($crate::db::named_statements())
    }};
}

/// A pooled connection idle for longer than this is pinged before use; one back sooner is used as it is.
pub const PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The runtime role's pool. It connects lazily, so the service starts (and reports itself unready) while
/// PostgreSQL is still down. A connection that sat idle for [`PING_AFTER_IDLE`] is checked before use (one that
/// fails is replaced); a busy one is not, since a ping is a round trip as dear as the read it would precede (a
/// connection broken in the last second fails its call with UNAVAILABLE, like any call during an outage).
///
/// Behind a transaction-mode pooler (`Pooler::Transaction`) the connections send no startup options (PgBouncer
/// refuses them; the statement limit is set in each transaction instead), cache no statements, and the process
/// stops naming prepared statements ([`named_statements`]): one pool of this kind decides it for the process,
/// which is `serve`'s one pool.
pub fn runtime_pool(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    let statement_timeout = settings.statement_timeout.as_millis().to_string();
    let mut options = PgConnectOptions::from_str(&settings.url)?
        .application_name("eventdata")
        .log_slow_statements(log::LevelFilter::Warn, settings.slow_statement);
    options = match settings.pooler {
        Pooler::None => options.options([("statement_timeout", statement_timeout.as_str())]),
        Pooler::Transaction => {
            BEHIND_TRANSACTION_POOLER.store(true, Ordering::Relaxed);
            options.statement_cache_capacity(0)
        }
    };
    let pooler = settings.pooler;
    Ok(PgPoolOptions::new()
        .max_connections(settings.pool_max)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(std::time::Duration::from_secs(300))
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if pooler == Pooler::Transaction {
                    learn_types(conn).await?;
                }
                Ok(())
            })
        })
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// Types the service's statements return that sqlx has no built-in knowledge of.
const LEARNED_TYPES: &str = "SELECT NULL::xid8, NULL::vector";

/// Teaches a new connection the types of [`LEARNED_TYPES`]. sqlx learns such a type the first time a result
/// carries it, with a simple query of its own sent between the statement's Parse and its Bind; a simple query
/// destroys the unnamed prepared statement, so with unnamed statements (behind a transaction-mode pooler) that
/// first statement fails ("unnamed prepared statement does not exist"). Here it fails on purpose, once, inside a
/// transaction (the pooler keeps the server connection for it), after which the connection knows the types; the
/// second attempt must succeed.
async fn learn_types(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    let _ = sqlx::query(LEARNED_TYPES).persistent(false).fetch_optional(&mut *tx).await;
    tx.rollback().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(LEARNED_TYPES).persistent(false).fetch_optional(&mut *tx).await?;
    tx.rollback().await
}

/// A small pool on the owner role, for migrations and the administrative subcommands.
pub async fn admin_pool(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    // Migrations and bulk loads are long by nature: their slow statements are logged at DEBUG, not WARN.
    let options = PgConnectOptions::from_str(&settings.admin_url)?
        .application_name("eventdata-admin")
        .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1));
    PgPoolOptions::new().max_connections(2).acquire_timeout(settings.acquire_timeout).connect_with(options).await
}

/// Opens a transaction in which row-level security admits only `org_id`'s rows. `SET LOCAL` ends with the
/// transaction, so a pooled connection never carries the organization into another request. BEGIN and SET travel
/// in one round trip (the id is a parsed UUID, so inlining it is safe).
pub async fn begin_for_org(pool: &PgPool, org_id: Uuid) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with(begin_statement(org_id, None, &[])).await
}

/// The statement that begins a transaction confined to `org_id` (as [`begin_for_org`]), its statements limited to
/// `statement_timeout` when given (the caller's remaining deadline: PostgreSQL itself cancels a statement that would
/// outlive the call), with more `SET LOCAL name = value` settings: `BEGIN` and the `SET LOCAL`s, one round trip.
/// Names and values are inlined: callers pass constants and validated numbers only.
pub fn begin_statement(
    org_id: Uuid,
    statement_timeout: Option<std::time::Duration>,
    settings: &[(&str, String)],
) -> sqlx::SqlStr {
    let mut sql = format!("BEGIN; SET LOCAL app.org_id = '{org_id}'");
    if let Some(t) = statement_timeout {
        sql.push_str(&format!("; SET LOCAL statement_timeout = {}", t.as_millis().max(1)));
    }
    for (name, value) in settings {
        sql.push_str(&format!("; SET LOCAL {name} = {value}"));
    }
    sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql))
}

/// One embedded migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's version (its file-name prefix).
    pub version: i64,
    /// Its description (the rest of the file name).
    pub description: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// Every embedded migration, oldest first, with whether it is applied.
pub async fn migration_status(pool: &PgPool) -> Result<Vec<MigrationState>, sqlx::Error> {
    let applied = applied_versions(pool).await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| MigrationState {
            version: m.version,
            description: m.description.to_string(),
            applied: applied.contains(&m.version),
        })
        .collect())
}

/// Applies every pending migration.
pub async fn migrate_up(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Reverts the `steps` most recently applied migrations (all of them when `steps` is `None`).
pub async fn migrate_down(pool: &PgPool, steps: Option<usize>) -> Result<(), sqlx::migrate::MigrateError> {
    let mut applied = applied_versions(pool).await?;
    applied.sort_unstable_by(|a, b| b.cmp(a));
    let target = match steps {
        None => 0,
        Some(n) => applied.get(n).copied().unwrap_or(0),
    };
    MIGRATOR.undo(pool, target).await
}

/// The highest applied migration version, if any (for health reports).
pub async fn current_migration_version(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    Ok(applied_versions(pool).await?.into_iter().max())
}

// In a transaction, as behind a transaction-mode pooler every statement must be (the health probe runs it).
async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let table_exists = sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
        .persistent(crate::db::named_statements())
        .fetch_one(&mut *tx)
        .await?;
    let versions = if table_exists {
        // Dynamic: the migrations table does not exist before the first migration, so no schema can check it.
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .persistent(crate::db::named_statements())
            .fetch_all(&mut *tx)
            .await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    Ok(versions)
}

/// Waits until `url` accepts a connection, retrying with capped, jittered backoff and saying so in the log, for at
/// most `limit`. Start-up calls it so the service does not crash when PostgreSQL is a few seconds late.
pub async fn wait_for_database(url: &str, limit: std::time::Duration) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let deadline = std::time::Instant::now() + limit;
    let mut backoff = crate::outbox::backoff::Backoff::new(std::time::Duration::from_secs(5));
    loop {
        match sqlx::PgConnection::connect(url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Err(err) if std::time::Instant::now() < deadline => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "waiting for PostgreSQL");
                tokio::time::sleep(delay).await;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod statements_behind_a_pooler {
    /// Where the statements of `serve` live: each must ask [`super::named_statements`] whether it may be named.
    const SOURCES: &[&str] = &["store", "app", "outbox/feed.rs", "db.rs"];
    const ASKS: &str = ".persistent(crate::db::named_statements())";

    /// Statements made in `source`, and how many of them ask.
    fn count(source: &str) -> (usize, usize) {
        let made = [
            "sqlx::query(",
            "sqlx::query_as(",
            "sqlx::query_scalar(",
            "sqlx::query!(",
            "sqlx::query_scalar!(",
            "static_query_as!(",
            "confined_query_as!(",
            ".build_query_as()",
            ".build_query_scalar()",
            ".build()",
        ]
        .iter()
        .map(|constructor| source.matches(constructor).count())
        .sum();
        // `persistent(false)`: unnamed on purpose, whatever the pooler; the two statement macros ask by themselves.
        let asking = [ASKS, ".persistent(false)", "static_query_as!(", "confined_query_as!("];
        (made, asking.iter().map(|asks| source.matches(asks).count()).sum())
    }

    #[test]
    fn every_statement_of_the_service_asks_whether_it_may_be_named() {
        let root = format!("{}/services", env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for source in SOURCES {
            let path = std::path::Path::new(&root).join(source);
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).expect("dir").map(|e| e.expect("entry").path()));
            } else {
                files.push(path);
            }
        }
        let mut missing = Vec::new();
        for file in files {
            let source = std::fs::read_to_string(&file).expect("source");
            // This module's own text names the constructors once each.
            let source = source.split("mod statements_behind_a_pooler").next().unwrap_or_default();
            let (made, asking) = count(source);
            if made != asking {
                missing.push(format!("{}: {made} statements, {asking} ask", file.display()));
            }
        }
        assert!(missing.is_empty(), "statements that would be named behind a pooler:\n{}", missing.join("\n"));
    }

    #[test]
    fn the_count_sees_a_statement_that_does_not_ask() {
        assert_eq!(count("sqlx::query_as(\"SELECT 1\").fetch_one(c)"), (1, 0));
        assert_eq!(count(&format!("sqlx::query_as(\"SELECT 1\"){ASKS}.fetch_one(c)")), (1, 1));
    }
}
