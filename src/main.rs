//! Command line entry point of mesos-dns-sidecar.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mesos_dns_sidecar::config::Config;
use mesos_dns_sidecar::daemon;
use tracing::{error, info, warn};

/// Node-local DNS for Apache Mesos clusters, answering Mesos-DNS's names.
#[derive(Debug, Parser)]
#[command(name = "mesos-dns-sidecar", version, about)]
struct Cli {
    /// Mesos-DNS style config.json (Mesos-DNS's `-config FILE` spelling works too).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit: 0 when valid, non-zero with the reason otherwise.
    #[arg(long)]
    check_config: bool,
    /// Serve the bundled example cluster instead of a real one.
    #[arg(long)]
    demo: bool,
    /// DNS port (overrides `port`).
    #[arg(long)]
    port: Option<u16>,
    /// DNS listen address (overrides `listener`).
    #[arg(long)]
    listener: Option<IpAddr>,
    /// Cluster domain (overrides `domain`).
    #[arg(long)]
    domain: Option<String>,
    /// HTTP API port (overrides `httpport`).
    #[arg(long)]
    http_port: Option<u16>,
    /// Serve this master state document, re-read on change (overrides `stateFile`).
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// Upstream resolvers, comma-separated `ip` or `ip:port` (overrides `resolvers`).
    #[arg(long, value_delimiter = ',', value_name = "ADDRS")]
    resolvers: Option<Vec<String>>,
    /// Don't forward names outside the cluster domain: refuse them (as `recurseon: false`).
    #[arg(long)]
    no_forward: bool,
    /// Log filter, e.g. info, debug, or mesos_dns_sidecar=debug (RUST_LOG also works).
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// Long options that Mesos-DNS's Go flag syntax writes with one dash.
const LONG_OPTIONS: &[&str] = &[
    "config",
    "check-config",
    "demo",
    "port",
    "listener",
    "domain",
    "state-file",
    "log-level",
    "version",
    "help",
];

/// Rewrites Go-style `-config FILE` / `-config=FILE` (and `-v`, `-vv`) to clap's spelling, so
/// Mesos-DNS units and scripts work unchanged.
fn go_style_args(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| {
        if a == "-v" {
            return "--log-level=debug".to_string();
        }
        if a == "-vv" {
            return "--log-level=trace".to_string();
        }
        if let Some(rest) = a.strip_prefix('-').filter(|r| !r.starts_with('-')) {
            let name = rest.split('=').next().unwrap_or(rest);
            if LONG_OPTIONS.contains(&name) {
                return format!("-{a}");
            }
        }
        a
    })
    .collect()
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => {
            let loaded = Config::load(path)?;
            for w in &loaded.warnings {
                warn!("{w}");
            }
            loaded.config
        }
        None => Config::default(),
    };
    if let Some(p) = cli.port {
        config.port = p;
    }
    if let Some(l) = cli.listener {
        config.listener = l;
    }
    if let Some(d) = &cli.domain {
        config.domain = d.clone();
    }
    if let Some(s) = &cli.state_file {
        config.state_file = Some(s.clone());
    }
    if let Some(p) = cli.http_port {
        config.http_port = p;
    }
    if let Some(r) = &cli.resolvers {
        config.resolvers = r.clone();
    }
    if cli.no_forward {
        config.recurse_on = false;
    }
    config.demo |= cli.demo;
    config.normalize();
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(go_style_args(std::env::args()));
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log_level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();

    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mesos-dns-sidecar: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    match run(&cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-dns-sidecar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_until_stopped(cli, config))
}

/// Runs the daemon; SIGHUP re-reads the configuration and restarts the daemon's parts with it,
/// carrying the served state over so there is no moment without answers. An invalid new
/// configuration is reported and the running one stays.
async fn serve_until_stopped(cli: &Cli, mut config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut running = daemon::start(config.clone(), None).await?;
    loop {
        tokio::select! {
            _ = running.wait() => return Ok(()),
            _ = shutdown_signal() => return Ok(()),
            _ = hup.recv() => {
                let new = match load_config(cli) {
                    Ok(c) => c,
                    Err(e) => {
                        error!("configuration reload rejected, keeping the running one: {e:#}");
                        continue;
                    }
                };
                let seed = running.state_document();
                drop(running);
                running = match daemon::start(new.clone(), seed.clone()).await {
                    Ok(r) => {
                        info!("configuration reloaded");
                        config = new;
                        r
                    }
                    Err(e) => {
                        error!("reloaded configuration failed to start ({e}); restoring the previous one");
                        daemon::start(config.clone(), seed).await?
                    }
                };
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::go_style_args;

    #[test]
    fn go_style_flags_are_rewritten() {
        let args = [
            "bin",
            "-config",
            "c.json",
            "-config=x",
            "-v",
            "--port",
            "5",
            "-p",
        ];
        let got = go_style_args(args.iter().map(|s| s.to_string()));
        assert_eq!(
            got,
            [
                "bin",
                "--config",
                "c.json",
                "--config=x",
                "--log-level=debug",
                "--port",
                "5",
                "-p"
            ]
        );
    }
}
