//! Assembles the running service: the gRPC server (API, health, reflection), the admin HTTP port, the
//! database health monitor, and graceful shutdown. Tests build it the same way, on port 0.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;

pub use crate::grpc::SERVICE_NAMES;

/// A service whose listeners are bound and whose pool exists, ready to run.
pub struct Application {
    config: Config,
    pool: PgPool,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
}

impl Application {
    /// Binds both ports (port 0 picks a free one) and creates the pool. Does not need the database to be up.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = crate::db::runtime_pool(&config.database).context("DATABASE_URL is not a usable PostgreSQL URL")?;
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on EVENTDATA_GRPC_ADDR {}", config.grpc_addr))?;
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on EVENTDATA_HTTP_ADDR {}", config.http_addr))?;
        Ok(Self { config, pool, grpc_listener, http_listener })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener.local_addr().expect("a bound listener has an address")
    }

    /// The bound admin HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        tracing::info!(grpc = %self.grpc_addr(), http = %self.http_addr(), "eventdata serving");
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // Every service is known (NOT_SERVING) before the first call, so Check and Watch never answer "unknown".
        for service in std::iter::once("").chain(SERVICE_NAMES.iter().copied()) {
            health_reporter.set_service_status(service, tonic_health::ServingStatus::NotServing).await;
        }
        let (ready_tx, ready_rx) = watch::channel(false);
        let monitor = tokio::spawn(crate::health::monitor(
            self.pool.clone(),
            self.config.health_interval,
            health_reporter,
            SERVICE_NAMES.to_vec(),
            ready_tx,
            stop_rx.clone(),
        ));

        // Reflection v1, and v1alpha for clients (older grpcurl, Postman) that only speak that one.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1().context("building the reflection service")?;
        let reflection_v1alpha = reflection().build_v1alpha().context("building the reflection service")?;

        if self.config.page_token_secret.is_none() {
            tracing::warn!("EVENTDATA_PAGE_TOKEN_SECRET is unset: page tokens are valid only on this process");
        }
        let metrics = crate::metrics::ApiMetrics::default();
        let notifier = crate::outbox::feed::CommitNotifier::spawn(self.pool.clone());
        let mut app =
            crate::app::App::new(self.pool.clone(), self.config.page_tokens(), self.config.database.statement_timeout)
                .with_metrics(metrics.clone())
                .with_commit_notifier(notifier.clone())
                .with_search_concurrency(self.config.database.search_concurrency, self.config.database.acquire_timeout)
                .with_create_statements(
                    self.config.database.create_statements,
                    self.config.database.creates_to_start_another,
                    self.config.database.creates_wait,
                );
        if self.config.database.pooler == crate::config::Pooler::Transaction {
            app = app.behind_transaction_pooler();
        }
        let replica = crate::replica::ReadReplica::spawn(self.pool.clone(), &self.config.database, metrics.clone())
            .context("DATABASE_READ_URL is not a usable PostgreSQL URL")?;
        let with_replica = replica.is_some();
        if let Some(replica) = replica {
            app = app.with_read_replica(replica);
        }
        // Tokens only matter when reads may go to a replica: without one, calls do not pass through the layer.
        let consistency = with_replica.then(|| crate::grpc::consistency::ConsistencyTokenLayer::new(app.clone()));
        let aging = tokio::spawn(age_warm_connections(app.clone()));
        let api = crate::grpc::Api {
            app: app.clone(),
            auth: std::sync::Arc::new(crate::app::auth::Authenticator::new(
                self.pool.clone(),
                self.config.auth_cache_ttl,
            )),
        };
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &self.config.tls {
            builder = builder.tls_config(server_tls(tls)?).context("configuring TLS on the gRPC port")?;
        }
        let grpc = builder
            .layer(crate::grpc::telemetry::RpcTelemetryLayer::new(
                metrics.clone(),
                self.config.limits.max_concurrent_rpcs,
            ))
            .layer(tower::util::option_layer(consistency))
            .add_routes(crate::grpc::routes(api, self.config.limits.max_request_bytes))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY a response's last segment waits for the client's delayed ACK: a 40 ms
                // floor under every call whose response spans more than one segment (measured with loadgen).
                tokio_stream::StreamExt::map(
                    tonic::transport::server::TcpIncoming::from(self.grpc_listener).with_nodelay(Some(true)),
                    |accepted| accepted.map(crate::grpc::coalesced_writes::CoalescedWrites::new),
                ),
                stopped(stop_rx.clone()),
            );

        let admin_state = crate::admin::AdminState {
            pool: self.pool.clone(),
            warm: app.warm_connections(),
            ready: ready_rx,
            probe_timeout: self.config.database.acquire_timeout,
            metrics,
            notifier,
        };
        let admin = axum::serve(self.http_listener, crate::admin::router(admin_state))
            .with_graceful_shutdown(stopped(stop_rx.clone()));

        let (grpc_result, admin_result) = tokio::join!(grpc, admin);
        let _ = monitor.await;
        aging.abort();
        app.release_warm_connections();
        self.pool.close().await;
        grpc_result.context("gRPC server failed")?;
        admin_result.context("admin HTTP server failed")?;
        Ok(())
    }
}

/// The gRPC port's TLS: the server identity, and with a client CA, mutual TLS (a client certificate is required).
fn server_tls(tls: &crate::config::TlsSettings) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    let read = |path: &std::path::Path, var: &str| {
        std::fs::read(path).with_context(|| format!("cannot read {var} {}", path.display()))
    };
    let identity = tonic::transport::Identity::from_pem(
        read(&tls.cert, "EVENTDATA_TLS_CERT")?,
        read(&tls.key, "EVENTDATA_TLS_KEY")?,
    );
    let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca {
        config = config.client_ca_root(tonic::transport::Certificate::from_pem(read(ca, "EVENTDATA_TLS_CLIENT_CA")?));
    }
    Ok(config)
}

/// Completes once the stop flag is raised.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}

/// Gives idle warm read connections back to the pool every second, so a service with no calls holds none for long.
async fn age_warm_connections(app: crate::app::App) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        every.tick().await;
        app.age_warm_connections();
    }
}
