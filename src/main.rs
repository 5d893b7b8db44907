//! Command line entry point of mesos-dns-sidecar.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mesos_dns_sidecar::config::Config;
use mesos_dns_sidecar::sockets::Sockets;
use mesos_dns_sidecar::{daemon, resolvconf};
use tracing::{error, info, warn};

/// Node-local DNS for Apache Mesos clusters, answering Mesos-DNS's names.
#[derive(Debug, Parser)]
#[command(name = "mesos-dns-sidecar", version, about)]
struct Cli {
    /// Host integration commands (the daemon runs when none is given).
    #[command(subcommand)]
    command: Option<Command>,
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

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Point the host's resolv.conf at the daemon, or give it back.
    Resolvconf {
        #[command(subcommand)]
        action: ResolvconfAction,
        /// The resolv.conf to manage.
        #[arg(long, default_value = "/etc/resolv.conf", global = true)]
        resolv_conf: PathBuf,
        /// Where the original is saved.
        #[arg(
            long,
            default_value = "/etc/mesos-dns-sidecar/resolv.conf.orig",
            global = true
        )]
        saved: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum ResolvconfAction {
    /// Save the original and point resolv.conf at the daemon, once it answers.
    Install {
        /// Nameserver lines to write, in order.
        #[arg(long = "nameserver", default_value = "127.0.0.1")]
        nameservers: Vec<String>,
        /// The daemon address to health-check before rewriting anything.
        #[arg(long, default_value = "127.0.0.1:53")]
        check: std::net::SocketAddr,
        /// How long to wait for the daemon to answer, seconds.
        #[arg(long, default_value_t = 15)]
        wait: u64,
    },
    /// Put the original resolv.conf back, byte for byte (or its symlink).
    Restore,
    /// Say whether resolv.conf points at the daemon.
    Status,
}

/// Whether something answers DNS at `addr` within `wait`: any response to a query for the
/// root's NS counts (the daemon forwards or refuses it, but it answers).
fn daemon_answers(addr: std::net::SocketAddr, wait: std::time::Duration) -> bool {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let deadline = std::time::Instant::now() + wait;
    let Ok(sock) = std::net::UdpSocket::bind(if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    while std::time::Instant::now() < deadline {
        let mut q = Message::query();
        q.add_query(Query::query(Name::root(), RecordType::NS));
        if let Ok(bytes) = q.to_vec() {
            let _ = sock.send_to(&bytes, addr);
            let mut buf = [0u8; 4096];
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if n >= 2 && buf[..2] == bytes[..2] {
                    return true;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    false
}

fn resolvconf_command(action: &ResolvconfAction, paths: &resolvconf::Paths) -> ExitCode {
    let result = match action {
        ResolvconfAction::Install {
            nameservers,
            check,
            wait,
        } => {
            if !daemon_answers(*check, std::time::Duration::from_secs(*wait)) {
                eprintln!(
                    "mesos-dns-sidecar: no DNS answer from {check}; resolv.conf left unchanged"
                );
                return ExitCode::FAILURE;
            }
            resolvconf::install(paths, nameservers)
                .map(|setup| println!("installed (was {setup:?})"))
        }
        ResolvconfAction::Restore => resolvconf::restore(paths).map(|_| println!("restored")),
        ResolvconfAction::Status => {
            println!("{}", resolvconf::status(paths));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-dns-sidecar: {e}");
            ExitCode::FAILURE
        }
    }
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

    if let Some(Command::Resolvconf {
        action,
        resolv_conf,
        saved,
    }) = &cli.command
    {
        let paths = resolvconf::Paths {
            resolv_conf: resolv_conf.clone(),
            saved: saved.clone(),
        };
        return resolvconf_command(action, &paths);
    }

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

/// Runs the daemon; SIGHUP re-reads the configuration and starts the daemon's parts anew with
/// it on the same sockets, carrying the served state over, before the old parts stop: there is
/// no moment without a reader on the sockets. An invalid new configuration is reported and the
/// running one stays. SIGTERM stops reading and answers what is in flight before exiting; under
/// socket activation the unread queries wait in the kernel for the next process.
async fn serve_until_stopped(cli: &Cli, config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let sockets = Sockets::from_environment();
    let mut running = daemon::start(config, None, &sockets).await?;
    loop {
        tokio::select! {
            _ = running.wait() => return Ok(()),
            _ = shutdown_signal() => {
                let _ = mesos_dns_sidecar::notify::notify("STOPPING=1");
                running.drain().await;
                return Ok(());
            }
            _ = hup.recv() => {
                let new = match load_config(cli) {
                    Ok(c) => c,
                    Err(e) => {
                        error!("configuration reload rejected, keeping the running one: {e:#}");
                        continue;
                    }
                };
                let _ = mesos_dns_sidecar::notify::notify("RELOADING=1");
                let seed = running.state_document();
                match daemon::start(new, seed, &sockets).await {
                    Ok(r) => {
                        info!("configuration reloaded");
                        std::mem::replace(&mut running, r).drain().await;
                        sockets.retain(running.listening());
                    }
                    Err(e) => {
                        error!("reloaded configuration failed to start ({e}); keeping the running one");
                    }
                }
                let _ = mesos_dns_sidecar::notify::notify("READY=1");
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
