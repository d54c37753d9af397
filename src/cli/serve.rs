//! `kiln serve`: migrate, listen, and shut down gracefully on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

use crate::app::router;
use crate::cli::CliResult;
use crate::config::{DatabaseArgs, ServeConfig};
use crate::sample;
use crate::state::replicas::ReadReplica;
use crate::store::Store;

pub async fn serve(database: DatabaseArgs, mut config: ServeConfig) -> CliResult {
    // Before the sample data loads, so the import counter sees it.
    if !config.metrics.disable_metrics {
        crate::telemetry::install();
    }
    let store = Store::connect_with(
        &database.database_url,
        database.database_max_connections,
        config.sqlite_max_bytes,
    )
    .await?;
    store.migrate().await?;
    // Before anything is served: a start without auditing leaves its own event.
    crate::audit::switch::record_start(&store, &config.fhir_base(), !config.disable_audit).await?;
    crate::engine::reindex::ensure_current(&store).await?;
    // On a SQLite file the audit spool sits beside it, on the same durable storage.
    if config.audit_spool_dir.is_none()
        && let Some(file) = store.sqlite_path()
    {
        let mut dir = file.into_os_string();
        dir.push("-audit-spool");
        config.audit_spool_dir = Some(dir.into());
    }
    // A sandbox deployment gives developers the sample patients to try their apps on.
    if config.load_sample_data || config.onboarding.sandbox {
        let audit = (!config.disable_audit).then(|| config.fhir_base());
        sample::load_if_absent(&store, audit.as_deref()).await?;
    }
    // From here on a search statement stops when its request would have timed out, and
    // searches hold at most half the pool.
    let search_timeout = config
        .search_timeout_ms
        .unwrap_or(config.request_timeout_secs.saturating_mul(1000));
    crate::store::set_search_limits(crate::store::SearchLimits {
        timeout: std::time::Duration::from_millis(search_timeout),
        slots: (database.database_max_connections / 2).max(1) as usize,
    });
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(
            RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|error| format!("cannot load the TLS certificate or key: {error}"))?,
        ),
        _ => None,
    };
    let bind = config.bind;
    crate::portal::terms::check(&config.portal).await?;
    let standby = connect_read_replica(&store, &database, &config).await?;
    let drain = std::time::Duration::from_secs(config.replicas.shutdown_drain_secs);
    let state = crate::app::state(store.clone(), config, standby)?;
    let draining = state.draining.clone();
    state.exports.check().await?;
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|error| format!("cannot listen on {bind}: {error}"))?;
    // `kiln launch create` and the other commands print links with it.
    store
        .set_setting(crate::store::BASE_URL_SETTING, &state.config.base_url)
        .await?;
    // `kiln app create` applies the same review rules.
    crate::apps::policy::record(&store, &state.config.onboarding).await?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to find the port when binding to :0.
    println!("kiln listening on {scheme}://{address}");
    tracing::info!(%address, base_url = %state.config.base_url, backend = ?store.backend(), "kiln started");
    if state.config.auth.anonymous_access {
        tracing::warn!(
            "--anonymous-access is on: requests without a token read and write every resource; \
             use it only on your own machine, never on a network others can reach"
        );
    }
    state.keys.ensure_key().await?;
    crate::bulk::worker::spawn(state.clone());
    if let Some(bind) = state.config.metrics.metrics_bind
        && !state.config.metrics.disable_metrics
    {
        serve_metrics(bind, crate::app::metrics_router(state.clone())).await?;
    }
    let audit = state.audit.clone();
    let app = router(state);
    // After the signal `/readyz` fails for `drain` while requests are still served, so the
    // load balancer stops sending new ones before the listener closes.
    let stop = async move {
        shutdown_signal().await;
        draining.begin();
        if !drain.is_zero() {
            tracing::info!(seconds = drain.as_secs(), "draining: /readyz answers 503");
            tokio::time::sleep(drain).await;
        }
    };
    match tls {
        Some(tls) => serve_tls(listener, tls, app, stop).await?,
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop)
            .await?
        }
    }
    // What the audit spool still holds goes into the log now, not at the next start (which
    // a replica taken away for good never has).
    if audit.settled().await.is_err() {
        tracing::warn!("the audit spool still holds events: the next start loads them");
    }
    store.close().await;
    tracing::info!("kiln stopped");
    Ok(())
}

/// The standby of `--database-read-url`, when set: PostgreSQL on both sides, checked at start.
async fn connect_read_replica(
    primary: &Store,
    database: &DatabaseArgs,
    config: &ServeConfig,
) -> Result<Option<Arc<ReadReplica>>, Box<dyn std::error::Error + Send + Sync>> {
    let Some(url) = &config.replicas.database_read_url else {
        return Ok(None);
    };
    let is_postgres =
        |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
    if primary.backend() != crate::store::Backend::Postgres || !is_postgres(url) {
        return Err("--database-read-url needs PostgreSQL, for it and for --database-url".into());
    }
    let standby = Store::connect(url, database.database_max_connections)
        .await
        .map_err(|error| format!("cannot connect to --database-read-url: {error}"))?;
    standby.ping().await?;
    tracing::info!("searches, history and exports read from the read replica");
    Ok(Some(Arc::new(ReadReplica::new(primary.clone(), standby))))
}

/// `/metrics` alone on its own listener (plain HTTP, for a network only scrapers reach),
/// until the process exits.
async fn serve_metrics(bind: SocketAddr, app: axum::Router) -> CliResult {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|error| format!("cannot listen on {bind} for metrics: {error}"))?;
    let address = listener.local_addr()?;
    println!("kiln metrics listening on http://{address}");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// HTTPS with rustls (TLS 1.2 and 1.3 only), with the same graceful shutdown.
async fn serve_tls(
    listener: TcpListener,
    tls: RustlsConfig,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> CliResult {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        stop.await;
        stopper.graceful_shutdown(None);
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM; in-flight requests then finish before the server exits.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
