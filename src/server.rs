//! `kiln serve`: migrate, listen, and shut down gracefully on SIGINT/SIGTERM.

use tokio::net::TcpListener;

use crate::app::{AppState, router};
use crate::cli::CliResult;
use crate::config::{DatabaseArgs, ServeConfig};
use crate::sample;
use crate::store::Store;

pub async fn serve(database: DatabaseArgs, config: ServeConfig) -> CliResult {
    let store = Store::connect(&database.database_url, database.database_max_connections).await?;
    store.migrate().await?;
    crate::engine::reindex::ensure_current(&store).await?;
    if config.load_sample_data {
        sample::load_if_absent(&store).await?;
    }
    let listener = TcpListener::bind(config.bind).await?;
    let address = listener.local_addr()?;
    // Tests and scripts read this line to find the port when binding to :0.
    println!("kiln listening on http://{address}");
    tracing::info!(%address, base_url = %config.base_url, backend = ?store.backend(), "kiln started");
    let state = AppState::new(store.clone(), config);
    state.keys.ensure_key().await?;
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    store.close().await;
    tracing::info!("kiln stopped");
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
