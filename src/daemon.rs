//! Wires a configuration into a running daemon: state source -> publisher -> DNS listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tracing::{error, info};

use crate::config::Config;
use crate::dns::{Listeners, Responder, TcpLimits};
use crate::mesos::{demo, file};
use crate::metrics::Metrics;
use crate::netif;
use crate::publish::Publisher;
use crate::records::RecordSettings;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A listen socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The configured domain is not a DNS name.
    #[error("invalid domain: {0}")]
    Domain(#[from] hickory_proto::ProtoError),
    /// The configured source is not available in this build.
    #[error("{0}")]
    Unsupported(String),
}

/// How often the `file` source checks its file for changes.
const FILE_POLL: Duration = Duration::from_secs(1);

/// Runs the daemon until the process is stopped. The configuration must be validated.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let metrics = Arc::new(Metrics::default());
    let store = Arc::new(ArcSwapOption::empty());
    let settings = RecordSettings::from_config(&config, netif::listener_addresses(config.listener));
    let publisher = Arc::new(Publisher::new(settings, store.clone(), metrics.clone()));

    if config.demo {
        // The bundled document is valid; failing here would be a build defect.
        if let Err(e) = publisher.publish(demo::DEMO_STATE).await {
            error!(error = %e, "demo state rejected");
        }
        info!("serving the bundled demo cluster");
    } else if let Some(path) = config.state_file.clone() {
        info!(path = %path.display(), "serving the state file");
        tokio::spawn(file::watch(path, publisher.clone(), FILE_POLL));
    } else {
        return Err(DaemonError::Unsupported(
            "reading state from Mesos masters or ZooKeeper is not in this build yet; \
             set stateFile in the config (or --state-file), or run with --demo"
                .into(),
        ));
    }

    if !config.dns_on {
        info!("dnson is false: not serving DNS");
        std::future::pending::<()>().await;
    }
    let responder = Arc::new(Responder::new(
        &config.domain,
        store,
        metrics.clone(),
        config.recurse_on,
    )?);
    let addr = SocketAddr::new(config.listener, config.port);
    let listeners = Listeners::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })?;
    info!(%addr, domain = %config.domain, "serving DNS");
    listeners
        .serve(responder, metrics, TcpLimits::default())
        .await;
    Ok(())
}
