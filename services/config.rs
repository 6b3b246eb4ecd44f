//! Typed settings read from the environment. Every value has a documented default (README, "Configuration");
//! a malformed value stops start-up with an error that names the variable. Secrets in URLs are never printed.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {var} {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it (never its value when it may hold a secret).
    pub reason: String,
}

/// Database connection settings, shared by every subcommand that talks to PostgreSQL.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// Runtime role: row-level security applies, no DDL (`DATABASE_URL`).
    pub url: String,
    /// Owner role, for migrations and the administrative subcommands (`DATABASE_ADMIN_URL`).
    pub admin_url: String,
    /// Most connections the pool opens (`EVENTDATA_DB_POOL_MAX`, default 20).
    pub pool_max: u32,
    /// How long a request waits for a pooled connection before UNAVAILABLE (`EVENTDATA_DB_ACQUIRE_TIMEOUT_MS`);
    /// also how long a search waits for its turn.
    pub acquire_timeout: Duration,
    /// Most searches running on the database at once (`EVENTDATA_DB_SEARCH_CONCURRENCY`; default: this machine's
    /// cores + 1; 0: no limit). The others wait in line (`app::search_turns`).
    pub search_concurrency: usize,
    /// Most create statements per organization and kind at once (`EVENTDATA_DB_CREATE_STATEMENTS`; default:
    /// this machine's cores; 0: every create in a statement of its own). Single creates arriving while they run
    /// wait and go together in the next one (`app::creates_together`).
    pub create_statements: usize,
    /// Creates that must be waiting before a create statement starts beside a running one of their organization
    /// and kind (`EVENTDATA_DB_CREATES_TO_START_ANOTHER`, default 8; at least 1). Fewer wait for the running one to
    /// end and go in the next.
    pub creates_to_start_another: usize,
    /// How long a create waits for that many before it starts a statement beside a running one anyway
    /// (`EVENTDATA_DB_CREATES_WAIT_MS`, default 10): only a slow statement (one waiting on a lock, say) makes the
    /// creates behind it wait that long.
    pub creates_wait: Duration,
    /// Upper bound on any one statement of a request (`EVENTDATA_DB_STATEMENT_TIMEOUT_MS`).
    pub statement_timeout: Duration,
    /// Statements slower than this are logged at WARN with their duration (`EVENTDATA_DB_SLOW_STATEMENT_MS`, 250).
    pub slow_statement: Duration,
    /// How long `serve` waits for PostgreSQL at start-up (`EVENTDATA_DB_STARTUP_TIMEOUT_MS`, 60000).
    pub startup_timeout: Duration,
    /// What `DATABASE_URL` points at (`EVENTDATA_DB_POOLER`, `none`).
    pub pooler: Pooler,
    /// A streaming standby for read-only calls (`DATABASE_READ_URL`, runtime role); none sends every read to
    /// the primary.
    pub read_url: Option<String>,
    /// A standby further behind than this is skipped until it catches up (`EVENTDATA_READ_MAX_LAG_MS`, 1000).
    pub read_max_lag: Duration,
    /// How long a read with a consistency token waits for the standby to replay it before it goes to the primary
    /// (`EVENTDATA_READ_TOKEN_WAIT_MS`, 50).
    pub read_token_wait: Duration,
}

/// What stands between the service and PostgreSQL on `DATABASE_URL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooler {
    /// PostgreSQL itself, or a pooler in session mode (`none`): prepared statements are cached per connection,
    /// and single-statement reads run outside a transaction.
    None,
    /// A pooler in transaction mode, such as PgBouncer before 1.21 (`transaction`): a server connection is
    /// ours only inside a transaction, and it keeps no prepared statement across transactions. No named
    /// prepared statements, every statement inside a transaction, no startup options (the statement limit is set
    /// in each transaction instead).
    Transaction,
}

/// OpenTelemetry and log settings.
#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    /// OTLP/gRPC collector (`OTEL_EXPORTER_OTLP_ENDPOINT`); none means spans stay local.
    pub otlp_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`, default `eventdata`.
    pub service_name: String,
    /// `LOG_FORMAT=json` for JSON lines; anything else (default) is the human format.
    pub json_logs: bool,
}

/// Everything `eventdata serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// gRPC listen address (`EVENTDATA_GRPC_ADDR`, default 127.0.0.1:50051; port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// Admin HTTP listen address (`EVENTDATA_HTTP_ADDR`, default 127.0.0.1:8080).
    pub http_addr: SocketAddr,
    /// PostgreSQL settings.
    pub database: DatabaseSettings,
    /// How often the database health probe runs (`EVENTDATA_HEALTH_INTERVAL_MS`, default 1000).
    pub health_interval: Duration,
    /// Telemetry settings.
    pub telemetry: TelemetrySettings,
    /// Key that signs page tokens (`EVENTDATA_PAGE_TOKEN_SECRET`); unset: a random key per process, so tokens
    /// are only good on the replica that issued them. Never printed.
    pub page_token_secret: Option<String>,
    /// How long an API-key lookup is trusted (`EVENTDATA_AUTH_CACHE_TTL_MS`, default 5000): a revoked key stops
    /// working within this time.
    pub auth_cache_ttl: Duration,
    /// TLS on the gRPC port, when configured.
    pub tls: Option<TlsSettings>,
    /// Request limits.
    pub limits: Limits,
}

/// TLS for the gRPC port: `EVENTDATA_TLS_CERT` and `EVENTDATA_TLS_KEY` (PEM files), and with
/// `EVENTDATA_TLS_CLIENT_CA` mutual TLS: clients must present a certificate signed by that CA.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// Server certificate chain (PEM).
    pub cert: std::path::PathBuf,
    /// Server private key (PEM).
    pub key: std::path::PathBuf,
    /// CA that client certificates must chain to (PEM), for mutual TLS.
    pub client_ca: Option<std::path::PathBuf>,
}

/// Limits that protect the service; each is configurable and reported with a precise status when exceeded.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Calls handled at once before new ones are shed with RESOURCE_EXHAUSTED (`EVENTDATA_MAX_CONCURRENT_RPCS`,
    /// default 256).
    pub max_concurrent_rpcs: usize,
    /// Largest request message in bytes (`EVENTDATA_MAX_REQUEST_BYTES`, default 16 MiB): larger ones get
    /// RESOURCE_EXHAUSTED.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_concurrent_rpcs: 256, max_request_bytes: 16 * 1024 * 1024 }
    }
}

/// Settings of `eventdata relay` (docs/relay.md).
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// The relay role's database URL (`EVENTDATA_RELAY_DATABASE_URL`).
    pub database_url: String,
    /// RabbitMQ nodes (`AMQP_URL`, comma-separated for a cluster): the relay connects to the first that answers.
    pub amqp_urls: Vec<String>,
    /// Durable topic exchange the changes go to (`EVENTDATA_RELAY_EXCHANGE`, default `eventdata.changes`).
    pub exchange: String,
    /// Alternate exchange for unroutable changes (`EVENTDATA_RELAY_ALTERNATE_EXCHANGE`, unset by default).
    pub alternate_exchange: Option<String>,
    /// How many partitions the change stream is split into by resource id (`EVENTDATA_RELAY_PARTITIONS`, 1).
    pub partitions: u32,
    /// Changes read from the log per query (`EVENTDATA_RELAY_BATCH_SIZE`, 500).
    pub batch_size: u32,
    /// Changes published and not yet confirmed, at most, per partition (`EVENTDATA_RELAY_MAX_IN_FLIGHT`, 4000).
    pub max_in_flight: u32,
    /// Longest time the saved checkpoint trails the confirmed changes (`EVENTDATA_RELAY_CHECKPOINT_INTERVAL_MS`,
    /// 100); it is also saved after every `batch_size` confirmed changes.
    pub checkpoint_interval: Duration,
    /// Longest wait between two looks at the log while no changes arrive (`EVENTDATA_RELAY_POLL_INTERVAL_MS`, 50);
    /// while changes flow the relay looks every 2 ms.
    pub poll_interval: Duration,
    /// How often a standby tries to take over a partition (`EVENTDATA_RELAY_CLAIM_INTERVAL_MS`, 1000).
    pub claim_interval: Duration,
    /// Cap of the reconnect backoff (`EVENTDATA_RELAY_MAX_BACKOFF_MS`, 10000).
    pub max_backoff: Duration,
    /// How long delivered changes are kept (`EVENTDATA_RELAY_RETENTION_HOURS`, 168 = 7 days).
    pub retention: Duration,
    /// How long idempotency records are kept, at least 24 h (`EVENTDATA_IDEMPOTENCY_RETENTION_HOURS`, 48).
    pub idempotency_retention: Duration,
    /// How often retention runs (`EVENTDATA_RELAY_RETENTION_INTERVAL_MS`, 60000).
    pub retention_interval: Duration,
    /// The relay's admin HTTP port with `/metrics` and `/health/live` (`EVENTDATA_RELAY_HTTP_ADDR`,
    /// default 127.0.0.1:8081).
    pub http_addr: SocketAddr,
}

/// Default relay-role URL for a local setup made by scripts/setup.sh.
pub const DEFAULT_RELAY_DATABASE_URL: &str = "postgres://eventdata_relay@127.0.0.1:5432/eventdata";

impl RelaySettings {
    /// Reads the relay settings.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let hours = |var: &'static str, default: &str, min: u64| -> Result<Duration, ConfigError> {
            let h: u64 = env.parsed(var, default)?;
            if h < min {
                return Err(ConfigError { var, reason: format!("must be at least {min} hours") });
            }
            Ok(Duration::from_secs(h * 3600))
        };
        Ok(Self {
            database_url: env.url(
                "EVENTDATA_RELAY_DATABASE_URL",
                DEFAULT_RELAY_DATABASE_URL,
                &["postgres", "postgresql"],
            )?,
            amqp_urls: env.urls("AMQP_URL", DEFAULT_AMQP_URL, &["amqp", "amqps"])?,
            exchange: env.get("EVENTDATA_RELAY_EXCHANGE").unwrap_or_else(|| "eventdata.changes".into()),
            alternate_exchange: env.get("EVENTDATA_RELAY_ALTERNATE_EXCHANGE"),
            partitions: env.at_least_one("EVENTDATA_RELAY_PARTITIONS", "1")?,
            batch_size: env.at_least_one("EVENTDATA_RELAY_BATCH_SIZE", "500")?,
            max_in_flight: env.at_least_one("EVENTDATA_RELAY_MAX_IN_FLIGHT", "4000")?,
            checkpoint_interval: env.millis("EVENTDATA_RELAY_CHECKPOINT_INTERVAL_MS", 100)?,
            poll_interval: env.millis("EVENTDATA_RELAY_POLL_INTERVAL_MS", 50)?,
            claim_interval: env.millis("EVENTDATA_RELAY_CLAIM_INTERVAL_MS", 1000)?,
            max_backoff: env.millis("EVENTDATA_RELAY_MAX_BACKOFF_MS", 10_000)?,
            retention: hours("EVENTDATA_RELAY_RETENTION_HOURS", "168", 1)?,
            idempotency_retention: hours("EVENTDATA_IDEMPOTENCY_RETENTION_HOURS", "48", 24)?,
            retention_interval: env.millis("EVENTDATA_RELAY_RETENTION_INTERVAL_MS", 60_000)?,
            http_addr: env.parsed("EVENTDATA_RELAY_HTTP_ADDR", "127.0.0.1:8081")?,
        })
    }
}

/// Settings of `eventdata backup` and `eventdata restore` (docs/operations.md).
#[derive(Clone, Debug)]
pub struct BackupSettings {
    /// The role `backup` reads with (`EVENTDATA_BACKUP_URL`): it bypasses row-level security, read-only.
    pub backup_url: String,
    /// A superuser connection `restore` creates the target database with (`EVENTDATA_RESTORE_URL`).
    pub restore_url: String,
}

/// Default backup-role URL for a local setup made by scripts/setup.sh.
pub const DEFAULT_BACKUP_URL: &str = "postgres://eventdata_backup@127.0.0.1:5432/eventdata";
/// Default restore URL: the local superuser's maintenance database.
pub const DEFAULT_RESTORE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl BackupSettings {
    /// Reads the backup and restore settings.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let postgres = &["postgres", "postgresql"];
        Ok(Self {
            backup_url: env.url("EVENTDATA_BACKUP_URL", DEFAULT_BACKUP_URL, postgres)?,
            restore_url: env.url("EVENTDATA_RESTORE_URL", DEFAULT_RESTORE_URL, postgres)?,
        })
    }
}

/// Default runtime-role URL for a local setup made by scripts/setup.sh.
pub const DEFAULT_DATABASE_URL: &str = "postgres://eventdata_app@127.0.0.1:5432/eventdata";
/// Default owner-role URL for a local setup made by scripts/setup.sh.
pub const DEFAULT_DATABASE_ADMIN_URL: &str = "postgres://eventdata_owner@127.0.0.1:5432/eventdata";
/// Default broker URL (the local RabbitMQ's guest account).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

impl Config {
    /// Page tokens signed with the configured secret, or with a random per-process key.
    pub fn page_tokens(&self) -> crate::domain::page_token::PageTokens {
        match &self.page_token_secret {
            Some(secret) => crate::domain::page_token::PageTokens::new(secret.as_bytes()),
            None => crate::domain::page_token::PageTokens::random(),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            grpc_addr: env.parsed("EVENTDATA_GRPC_ADDR", "127.0.0.1:50051")?,
            http_addr: env.parsed("EVENTDATA_HTTP_ADDR", "127.0.0.1:8080")?,
            database: DatabaseSettings::from_lookup(&lookup)?,
            health_interval: env.millis("EVENTDATA_HEALTH_INTERVAL_MS", 1000)?,
            telemetry: TelemetrySettings::from_lookup(&lookup)?,
            page_token_secret: env.get("EVENTDATA_PAGE_TOKEN_SECRET"),
            auth_cache_ttl: env.millis("EVENTDATA_AUTH_CACHE_TTL_MS", 5000)?,
            tls: tls_settings(&env)?,
            limits: Limits {
                max_concurrent_rpcs: env.parsed("EVENTDATA_MAX_CONCURRENT_RPCS", "256")?,
                max_request_bytes: env.parsed("EVENTDATA_MAX_REQUEST_BYTES", "16777216")?,
            },
        })
    }
}

impl DatabaseSettings {
    /// Reads the database settings alone (the administrative subcommands need nothing else).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            url: env.url("DATABASE_URL", DEFAULT_DATABASE_URL, &["postgres", "postgresql"])?,
            admin_url: env.url("DATABASE_ADMIN_URL", DEFAULT_DATABASE_ADMIN_URL, &["postgres", "postgresql"])?,
            pool_max: env.at_least_one("EVENTDATA_DB_POOL_MAX", "20")?,
            acquire_timeout: env.millis("EVENTDATA_DB_ACQUIRE_TIMEOUT_MS", 2000)?,
            search_concurrency: env
                .parsed("EVENTDATA_DB_SEARCH_CONCURRENCY", &default_search_concurrency().to_string())?,
            create_statements: env
                .parsed("EVENTDATA_DB_CREATE_STATEMENTS", &default_create_statements().to_string())?,
            creates_to_start_another: env.at_least_one("EVENTDATA_DB_CREATES_TO_START_ANOTHER", "8")?,
            creates_wait: env.millis("EVENTDATA_DB_CREATES_WAIT_MS", 10)?,
            statement_timeout: env.millis("EVENTDATA_DB_STATEMENT_TIMEOUT_MS", 30_000)?,
            slow_statement: env.millis("EVENTDATA_DB_SLOW_STATEMENT_MS", 250)?,
            startup_timeout: env.millis("EVENTDATA_DB_STARTUP_TIMEOUT_MS", 60_000)?,
            read_url: match env.get("DATABASE_READ_URL") {
                None => None,
                Some(_) => Some(env.url("DATABASE_READ_URL", "", &["postgres", "postgresql"])?),
            },
            read_max_lag: env.millis("EVENTDATA_READ_MAX_LAG_MS", 1000)?,
            read_token_wait: env.millis("EVENTDATA_READ_TOKEN_WAIT_MS", 50)?,
            pooler: match env.get("EVENTDATA_DB_POOLER").as_deref() {
                None | Some("none") => Pooler::None,
                Some("transaction") => Pooler::Transaction,
                Some(_) => {
                    return Err(ConfigError {
                        var: "EVENTDATA_DB_POOLER",
                        reason: "must be `none` or `transaction`".into(),
                    });
                }
            },
        })
    }
}

/// One search per core, and one more to have the next ready when one ends (its answer is on its way back
/// while the core takes the next). Right when the database runs beside the service or on a machine of the same
/// size; otherwise the setting says so (README). Measured on 2 cores (docs/performance.md, "Searches take turns").
fn default_search_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from) + 1
}

/// One create statement per core for each organization and kind: on 2 cores, 1 and 2 wrote as many events a
/// second (docs/performance.md, "Creates that go together"), and one statement per core keeps a busy tenant's
/// creates on every core of a database as large as the service's machine.
fn default_create_statements() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

impl TelemetrySettings {
    /// Reads the OpenTelemetry and log settings.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let otlp_endpoint = match env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            None => None,
            Some(_) => Some(env.url("OTEL_EXPORTER_OTLP_ENDPOINT", "", &["http", "https"])?),
        };
        let json_logs = match env.get("LOG_FORMAT").as_deref() {
            None | Some("text") | Some("human") => false,
            Some("json") => true,
            Some(_) => {
                return Err(ConfigError { var: "LOG_FORMAT", reason: "must be `json` or `text`".into() });
            }
        };
        Ok(Self {
            otlp_endpoint,
            service_name: env.get("OTEL_SERVICE_NAME").unwrap_or_else(|| "eventdata".into()),
            json_logs,
        })
    }
}

fn tls_settings(env: &Env<'_>) -> Result<Option<TlsSettings>, ConfigError> {
    let file = |var: &'static str| -> Result<Option<std::path::PathBuf>, ConfigError> {
        match env.get(var) {
            None => Ok(None),
            Some(path) if std::path::Path::new(&path).is_file() => Ok(Some(path.into())),
            Some(_) => Err(ConfigError { var, reason: "does not name a readable file".into() }),
        }
    };
    match (file("EVENTDATA_TLS_CERT")?, file("EVENTDATA_TLS_KEY")?, file("EVENTDATA_TLS_CLIENT_CA")?) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), client_ca) => Ok(Some(TlsSettings { cert, key, client_ca })),
        (None, _, _) => {
            Err(ConfigError { var: "EVENTDATA_TLS_CERT", reason: "is required with the other TLS settings".into() })
        }
        (_, None, _) => {
            Err(ConfigError { var: "EVENTDATA_TLS_KEY", reason: "is required with EVENTDATA_TLS_CERT".into() })
        }
    }
}

/// A view of the environment where an empty value counts as unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn parsed<T: FromStr>(&self, var: &'static str, default: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.get(var).unwrap_or_else(|| default.to_owned());
        raw.parse().map_err(|e: T::Err| ConfigError { var, reason: format!("is malformed ({e}): {raw:?}") })
    }

    /// A count that must be at least 1.
    fn at_least_one<T>(&self, var: &'static str, default: &str) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + From<u8>,
        T::Err: std::fmt::Display,
    {
        let n: T = self.parsed(var, default)?;
        if n < T::from(1) {
            return Err(ConfigError { var, reason: "must be at least 1".into() });
        }
        Ok(n)
    }

    fn millis(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        let ms: u64 = self.parsed(var, &default.to_string())?;
        if ms == 0 {
            return Err(ConfigError { var, reason: "must be a positive number of milliseconds".into() });
        }
        Ok(Duration::from_millis(ms))
    }

    /// One or more comma-separated URLs, each as [`Env::url`] requires.
    fn urls(&self, var: &'static str, default: &str, schemes: &[&str]) -> Result<Vec<String>, ConfigError> {
        let raw = self.get(var).unwrap_or_else(|| default.to_owned());
        raw.split(',')
            .map(str::trim)
            .map(|one| {
                if one.is_empty() {
                    return Err(ConfigError { var, reason: "has an empty entry in its comma-separated list".into() });
                }
                let lookup = |_: &str| Some(one.to_owned());
                Env(&lookup).url(var, default, schemes)
            })
            .collect()
    }

    /// A URL whose scheme is one of `schemes`. The value is not echoed: it may carry a password.
    fn url(&self, var: &'static str, default: &str, schemes: &[&str]) -> Result<String, ConfigError> {
        let raw = self.get(var).unwrap_or_else(|| default.to_owned());
        let scheme_ok =
            raw.split_once("://").is_some_and(|(scheme, rest)| schemes.contains(&scheme) && !rest.is_empty());
        if !scheme_ok {
            let expected = schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ");
            return Err(ConfigError { var, reason: format!("is malformed: expected a {expected} URL") });
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_describe_a_local_setup() {
        let config = config_with(&[]).expect("defaults are valid");
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(config.database.pool_max, 20);
        assert_eq!(config.database.search_concurrency, std::thread::available_parallelism().expect("cores").get() + 1);
        assert_eq!(config.database.create_statements, std::thread::available_parallelism().expect("cores").get());
        assert_eq!(config.database.creates_to_start_another, 8);
        assert_eq!(config.database.creates_wait, Duration::from_millis(10));
        assert_eq!(config.telemetry.service_name, "eventdata");
        assert!(config.telemetry.otlp_endpoint.is_none());
    }

    #[test]
    fn each_malformed_value_names_its_variable() {
        let cases = [
            ("EVENTDATA_GRPC_ADDR", "localhost"),
            ("EVENTDATA_HTTP_ADDR", "8080"),
            ("DATABASE_URL", "mysql://x@y/z"),
            ("DATABASE_ADMIN_URL", "not a url"),
            ("EVENTDATA_DB_POOL_MAX", "0"),
            ("EVENTDATA_DB_POOL_MAX", "many"),
            ("EVENTDATA_DB_ACQUIRE_TIMEOUT_MS", "-5"),
            ("EVENTDATA_DB_SEARCH_CONCURRENCY", "-1"),
            ("EVENTDATA_DB_SEARCH_CONCURRENCY", "cores"),
            ("EVENTDATA_DB_CREATES_TO_START_ANOTHER", "0"),
            ("EVENTDATA_DB_CREATES_WAIT_MS", "0"),
            ("EVENTDATA_DB_STATEMENT_TIMEOUT_MS", "0"),
            ("EVENTDATA_HEALTH_INTERVAL_MS", "1s"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("LOG_FORMAT", "xml"),
            ("EVENTDATA_AUTH_CACHE_TTL_MS", "soon"),
            ("EVENTDATA_TLS_CERT", "/nonexistent/cert.pem"),
            ("EVENTDATA_MAX_CONCURRENT_RPCS", "-1"),
        ];
        for (var, value) in cases {
            let err = config_with(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var, "{value:?} blamed the wrong variable");
            assert!(err.to_string().contains(var), "message {err} does not name {var}");
        }
    }

    #[test]
    fn relay_settings_default_and_reject_bad_values() {
        let defaults = RelaySettings::from_lookup(|_| None).expect("defaults");
        assert_eq!(
            (defaults.exchange.as_str(), defaults.partitions, defaults.batch_size),
            ("eventdata.changes", 1, 500)
        );
        assert_eq!(defaults.retention, Duration::from_secs(7 * 24 * 3600));
        for (var, value) in [
            ("EVENTDATA_RELAY_PARTITIONS", "0"),
            ("EVENTDATA_RELAY_BATCH_SIZE", "x"),
            ("EVENTDATA_IDEMPOTENCY_RETENTION_HOURS", "1"),
            ("EVENTDATA_RELAY_DATABASE_URL", "nope"),
            ("AMQP_URL", "http://broker"),
            ("AMQP_URL", "amqp://a/%2f,http://b"),
        ] {
            let err = RelaySettings::from_lookup(|k| (k == var).then(|| value.to_string())).expect_err(var);
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn backup_settings_default_to_the_local_roles_and_reject_other_schemes() {
        let defaults = BackupSettings::from_lookup(|_| None).expect("defaults");
        assert_eq!(
            (defaults.backup_url.as_str(), defaults.restore_url.as_str()),
            (DEFAULT_BACKUP_URL, DEFAULT_RESTORE_URL)
        );
        for var in ["EVENTDATA_BACKUP_URL", "EVENTDATA_RESTORE_URL"] {
            let err = BackupSettings::from_lookup(|k| (k == var).then(|| "mysql://x@y/z".to_string())).expect_err(var);
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn amqp_url_may_name_several_nodes() {
        let urls =
            |raw: &str| RelaySettings::from_lookup(|k| (k == "AMQP_URL").then(|| raw.to_owned())).map(|s| s.amqp_urls);
        assert_eq!(urls("amqp://a:5672/%2f").expect("one"), vec!["amqp://a:5672/%2f"]);
        assert_eq!(
            urls("amqp://a:5672/%2f, amqps://b:5671/%2f").expect("two"),
            vec!["amqp://a:5672/%2f", "amqps://b:5671/%2f"]
        );
        assert!(urls("amqp://a/%2f,").is_err(), "an empty node");
    }

    #[test]
    fn url_errors_do_not_echo_secrets() {
        let err = config_with(&[("DATABASE_URL", "mysql://admin:hunter2@db/x")]).expect_err("bad scheme");
        assert!(!err.to_string().contains("hunter2"));
    }
}
