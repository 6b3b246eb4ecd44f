//! The `eventdata` binary: every deployable and operator task as a subcommand.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use eventdata::config::{BackupSettings, Config, DatabaseSettings, RelaySettings, TelemetrySettings};
use eventdata::domain::api_key::{NewApiKey, Scopes};
use eventdata::domain::org_slug::OrgSlug;
use eventdata::loadgen::{LoadOptions, Workload};
use eventdata::seed::{self, SeedOptions};
use eventdata::store::{api_keys, organizations};
use eventdata::{db, startup, telemetry};
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "eventdata", version, about = "Event Data API: gRPC catalogue, search and graph over PostgreSQL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (EVENTDATA_GRPC_ADDR) and the admin HTTP port (EVENTDATA_HTTP_ADDR).
    Serve,
    /// Apply, revert or list schema migrations (as the owner role, DATABASE_ADMIN_URL).
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage organizations (tenants).
    Orgs {
        #[command(subcommand)]
        action: OrgsAction,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Load a realistic synthetic catalogue into an organization (created if missing); safe to run again.
    Seed {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// Number of events; speakers, companies, topics, relations and media scale with it.
        #[arg(long, default_value_t = 1000)]
        events: u64,
        /// Generator seed: the same seed gives the same catalogue.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many events and how many speakers get a 1536-d embedding (topics always do).
        #[arg(long, default_value_t = 20_000)]
        embeddings: u64,
        /// Also write one change per inserted row to the outbox, as the API would.
        #[arg(long)]
        emit_changes: bool,
    },
    /// Dump the database (pg_dump -Fc, as EVENTDATA_BACKUP_URL) with a manifest of row counts and checksums.
    Backup {
        /// The dump file; the manifest is written beside it as FILE.manifest.json.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Restore a backup into a new database (pg_restore -j, as EVENTDATA_RESTORE_URL) and verify it.
    Restore {
        /// The dump file written by `backup`.
        file: std::path::PathBuf,
        /// The database to create and restore into.
        #[arg(long, default_value = "eventdata_restored")]
        database: String,
        /// Parallel restore workers.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// Drive a running service with concurrent gRPC clients; print throughput, latency percentiles and errors.
    Loadgen {
        /// What each call does.
        #[arg(long, value_enum)]
        workload: Workload,
        /// Concurrent clients (one connection and one call in flight each).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// The service's gRPC URL.
        #[arg(long, env = "EVENTDATA_LOADGEN_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        /// API key (scopes read, and write for create and mixed).
        #[arg(long, env = "EVENTDATA_API_KEY", hide_env_values = true)]
        key: String,
    },
    /// Make one gRPC call with a JSON request and print the answers as JSON (no grpcurl needed). Without a
    /// method, list every method.
    Call {
        /// `Service/Method`, e.g. `EventService/GetEvent` (package optional).
        method: Option<String>,
        /// The request in protobuf's JSON mapping; `-` reads it from standard input.
        #[arg(default_value = "{}")]
        request: String,
        /// The service's gRPC URL.
        #[arg(long, env = "EVENTDATA_GRPC_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        /// API key, sent as `authorization: Bearer <key>`.
        #[arg(long, env = "EVENTDATA_API_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// Publish the outbox to RabbitMQ (default), or inspect and replay it.
    Relay {
        #[command(subcommand)]
        action: Option<RelayAction>,
    },
}

#[derive(Subcommand)]
enum RelayAction {
    /// Run the relay until SIGTERM/SIGINT (the default).
    Run,
    /// Print each partition's checkpoint, backlog, oldest undelivered change and whether a relay is active on it.
    Status,
    /// Make the index through which each of EVENTDATA_RELAY_PARTITIONS partitions reads only its own changes (as
    /// the owner, DATABASE_ADMIN_URL; CREATE INDEX CONCURRENTLY, so writes go on). One partition needs none.
    Prepare,
    /// Re-publish the changes with positions FROM..=TO (for a consumer that lost data); checkpoints are unchanged.
    Replay {
        /// First position to publish again.
        #[arg(long)]
        from: i64,
        /// Last position (default: the newest).
        #[arg(long)]
        to: Option<i64>,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert applied migrations, newest first (all of them unless --steps is given).
    Down {
        /// How many migrations to revert.
        #[arg(long)]
        steps: Option<usize>,
    },
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Subcommand)]
enum OrgsAction {
    /// Create an organization; prints its id.
    Create {
        /// Unique slug: lower-case letters, digits and inner hyphens.
        slug: String,
        /// Display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create an API key and print its secret once; only a hash is stored.
    Create {
        /// The organization the key acts for.
        #[arg(long)]
        org: String,
        /// Comma-separated scopes: read, write, admin.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// A label for the key.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List an organization's keys (ids, scopes, state; never secrets).
    List {
        /// The organization.
        #[arg(long)]
        org: String,
    },
    /// Revoke a key by id.
    Revoke {
        /// The key id printed by `keys create` or `keys list`.
        id: Uuid,
    },
}

/// mimalloc instead of glibc's malloc: Get 6-13 % more calls a second at 16 clients (docs/performance.md,
/// "mimalloc"); glibc consolidated its fast bins after every large free (a List's rows, a response buffer).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve().await,
        Command::Migrate { action } => migrate(action).await,
        Command::Orgs { action } => orgs(action).await,
        Command::Keys { action } => keys(action).await,
        Command::Relay { action } => relay(action.unwrap_or(RelayAction::Run)).await,
        Command::Loadgen { workload, concurrency, duration, url, key } => {
            let options =
                LoadOptions { url, key, workload, concurrency, duration: std::time::Duration::from_secs(duration) };
            println!("{}", eventdata::loadgen::run(&options).await?.render());
            Ok(())
        }
        Command::Call { method, request, url, key } => call(method.as_deref(), &request, &url, key.as_deref()).await,
        Command::Backup { out } => backup(&out).await,
        Command::Restore { file, database, jobs } => restore(&file, &database, jobs).await,
        Command::Seed { org, events, seed, embeddings, emit_changes } => {
            seed_org(&org, SeedOptions { events, seed, embeddings, emit_changes }).await
        }
    }
}

async fn call(method: Option<&str>, request: &str, url: &str, key: Option<&str>) -> anyhow::Result<()> {
    use eventdata::call;
    let Some(method) = method else {
        println!("{}", call::methods()?.join("\n"));
        return Ok(());
    };
    let method = call::find_method(method)?;
    let json = if request == "-" { std::io::read_to_string(std::io::stdin())? } else { request.to_owned() };
    let message = call::request(&method, &json)?;
    call::call(url, key, &method, message, &mut std::io::stdout().lock()).await
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let telemetry = telemetry::init(&config.telemetry)?;
    db::wait_for_database(&config.database.url, config.database.startup_timeout)
        .await
        .context("PostgreSQL did not become reachable with DATABASE_URL")?;
    let app = startup::Application::build(config).await?;
    let result = app.run_until_stopped(startup::shutdown_signal()).await;
    telemetry.shutdown();
    result
}

/// The owner-role pool, for the administrative subcommands.
async fn admin_pool() -> anyhow::Result<sqlx::PgPool> {
    let settings = DatabaseSettings::from_lookup(|name| std::env::var(name).ok())?;
    telemetry::init(&TelemetrySettings::from_lookup(|name| std::env::var(name).ok())?)?;
    db::admin_pool(&settings).await.context("cannot connect with DATABASE_ADMIN_URL")
}

async fn migrate(action: MigrateAction) -> anyhow::Result<()> {
    let pool = admin_pool().await?;
    match action {
        MigrateAction::Up => db::migrate_up(&pool).await?,
        MigrateAction::Down { steps } => db::migrate_down(&pool, steps).await?,
        MigrateAction::Status => {}
    }
    for state in db::migration_status(&pool).await? {
        let mark = if state.applied { "applied" } else { "pending" };
        println!("{:04} {:<8} {}", state.version, mark, state.description);
    }
    Ok(())
}

async fn orgs(action: OrgsAction) -> anyhow::Result<()> {
    let OrgsAction::Create { slug, name } = action;
    let slug = OrgSlug::parse(&slug).map_err(anyhow::Error::msg)?;
    let name = name.unwrap_or_else(|| slug.to_string());
    let pool = admin_pool().await?;
    match organizations::insert(&pool, &slug, &name).await? {
        Some(org) => println!("{}\t{}", org.id, org.slug),
        None => bail!("organization {slug} already exists"),
    }
    Ok(())
}

async fn keys(action: KeysAction) -> anyhow::Result<()> {
    let pool = admin_pool().await?;
    match action {
        KeysAction::Create { org, scopes, name } => {
            let scopes = Scopes::parse_list(&scopes).map_err(anyhow::Error::msg)?;
            let org = find_org(&pool, &org).await?;
            let key = NewApiKey::generate();
            let record = api_keys::insert(&pool, org.id, &name, &key.secret_hash, &scopes.names()).await?;
            eprintln!(
                "key {} for {} with scopes {}; the secret below is shown only once:",
                record.id,
                org.slug,
                scopes.names().join(",")
            );
            println!("{}", key.secret);
        }
        KeysAction::List { org } => {
            let org = find_org(&pool, &org).await?;
            println!("id\tscopes\tcreated\trevoked\tname");
            for key in api_keys::list_for_org(&pool, org.id).await? {
                let revoked = key.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    key.id,
                    key.scopes.join(","),
                    key.created_at.to_rfc3339(),
                    revoked,
                    key.name
                );
            }
        }
        KeysAction::Revoke { id } => match api_keys::revoke(&pool, id).await? {
            Some(key) => println!("revoked {}", key.id),
            None => bail!("no key {id}"),
        },
    }
    Ok(())
}

async fn relay(action: RelayAction) -> anyhow::Result<()> {
    let settings = RelaySettings::from_lookup(|name| std::env::var(name).ok())?;
    let telemetry = telemetry::init(&TelemetrySettings::from_lookup(|name| std::env::var(name).ok())?)?;
    let result = match action {
        RelayAction::Run => {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                startup::shutdown_signal().await;
                let _ = stop.send(true);
            });
            let relay = eventdata::outbox::relay::Relay::new(settings.clone());
            let admin = eventdata::admin::RelayAdminState {
                metrics: relay.metrics(),
                pool: sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_lazy(&settings.database_url)?,
                partitions: settings.partitions,
            };
            let listener = tokio::net::TcpListener::bind(settings.http_addr)
                .await
                .with_context(|| format!("cannot listen on EVENTDATA_RELAY_HTTP_ADDR {}", settings.http_addr))?;
            let mut admin_stop = stopped.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, eventdata::admin::relay_router(admin))
                    .with_graceful_shutdown(async move {
                        let _ = admin_stop.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(err) = served {
                    tracing::warn!(error = %err, "relay admin port failed");
                }
            });
            relay.run(stopped).await
        }
        RelayAction::Status => relay_status(&settings).await,
        RelayAction::Prepare => relay_prepare(&settings).await,
        RelayAction::Replay { from, to } => {
            let count = eventdata::outbox::relay::replay(&settings, from, to.unwrap_or(i64::MAX)).await?;
            println!("replayed {count} changes");
            Ok(())
        }
    };
    telemetry.shutdown();
    result
}

async fn relay_prepare(settings: &RelaySettings) -> anyhow::Result<()> {
    let Some(statement) = eventdata::outbox::log::partition_index_sql(settings.partitions) else {
        println!("one partition reads the whole log through outbox_read_idx: nothing to prepare");
        return Ok(());
    };
    let database = DatabaseSettings::from_lookup(|name| std::env::var(name).ok())?;
    let pool = db::admin_pool(&database).await.context("cannot connect with DATABASE_ADMIN_URL")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&pool).await?;
    let mut conn = pool.acquire().await?;
    if !eventdata::outbox::log::has_partition_index(&mut conn, settings.partitions).await? {
        bail!(
            "{} exists but is not valid (an interrupted build): drop it and run again",
            eventdata::outbox::log::partition_index_name(settings.partitions)
        );
    }
    println!("{} ready", eventdata::outbox::log::partition_index_name(settings.partitions));
    Ok(())
}

async fn relay_status(settings: &RelaySettings) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&settings.database_url)
        .await
        .context("cannot connect with EVENTDATA_RELAY_DATABASE_URL")?;
    println!("partition\tactive\tcheckpoint\tbacklog\toldest_undelivered_s");
    for p in eventdata::outbox::log::status(&mut conn, settings.partitions).await? {
        let checkpoint = match (p.txid, p.position) {
            (Some(txid), Some(position)) => format!("{txid}/{position}"),
            _ => "-".into(),
        };
        let age = p.oldest_age_seconds.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into());
        println!("{}\t{}\t{}\t{}\t{}", p.partition, p.active, checkpoint, p.backlog, age);
    }
    Ok(())
}

async fn backup(out: &std::path::Path) -> anyhow::Result<()> {
    let url = BackupSettings::from_lookup(|name| std::env::var(name).ok())?.backup_url;
    let started = std::time::Instant::now();
    let manifest = eventdata::backup::backup(&url, out).await?;
    let rows: i64 = manifest.tables.iter().map(|t| t.rows).sum();
    println!(
        "backed up {} ({} tables, {rows} rows) to {} in {:.1} s; manifest {}",
        manifest.database,
        manifest.tables.len(),
        out.display(),
        started.elapsed().as_secs_f64(),
        eventdata::backup::manifest_path(out).display()
    );
    Ok(())
}

async fn restore(file: &std::path::Path, database: &str, jobs: usize) -> anyhow::Result<()> {
    let url = BackupSettings::from_lookup(|name| std::env::var(name).ok())?.restore_url;
    let started = std::time::Instant::now();
    let checks = eventdata::backup::restore(&url, file, database, jobs).await?;
    println!("table\texpected_rows\trestored_rows\tchecksum");
    for check in &checks {
        let restored = check.restored.as_ref().map(|d| d.rows.to_string()).unwrap_or_else(|| "missing".into());
        let verdict = if check.matches() { "ok" } else { "MISMATCH" };
        println!("{}\t{}\t{restored}\t{verdict}", check.expected.table, check.expected.rows);
    }
    let bad = checks.iter().filter(|c| !c.matches()).count();
    if bad > 0 {
        bail!("{bad} tables differ from the backup's manifest");
    }
    println!(
        "restored {} into {database} in {:.1} s (restore and verification); every table matches the manifest",
        file.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed_org(slug: &str, options: SeedOptions) -> anyhow::Result<()> {
    let pool = admin_pool().await?;
    let slug = OrgSlug::parse(slug).map_err(anyhow::Error::msg)?;
    let org = match organizations::find_by_slug(&pool, &slug).await? {
        Some(org) => org,
        None => {
            eprintln!("creating organization {slug}");
            organizations::insert(&pool, &slug, slug.as_str()).await?.context("organization appeared concurrently")?
        }
    };
    let report = seed::run(&pool, org.id, &options).await?;
    println!("table\tinserted");
    for (table, count) in &report.inserted {
        println!("{table}\t{count}");
    }
    let inserted: u64 = report.inserted.iter().map(|(_, n)| n).sum();
    println!(
        "seeded {} ({} events, seed {}): {inserted} rows inserted in {:.1} s, indexes and ANALYZE {:.1} s",
        org.slug,
        options.events,
        options.seed,
        report.load_time.as_secs_f64(),
        report.index_time.as_secs_f64()
    );
    if !report.rebuilt_indexes.is_empty() {
        println!("rebuilt after the load: {}", report.rebuilt_indexes.join(", "));
    }
    if options.emit_changes {
        println!("{} changes written to the outbox", report.changes);
    } else {
        println!("no changes were written to the outbox (pass --emit-changes to publish the seeded rows)");
    }
    Ok(())
}

async fn find_org(pool: &sqlx::PgPool, slug: &str) -> anyhow::Result<organizations::Organization> {
    let slug = OrgSlug::parse(slug).map_err(anyhow::Error::msg)?;
    organizations::find_by_slug(pool, &slug).await?.with_context(|| format!("no organization {slug}"))
}
