//! Command line entry point of mesos-dns-sidecar.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hickory_proto::rr::Name;
use mesos_dns_sidecar::config::{self, Config};
use mesos_dns_sidecar::sockets::Sockets;
use mesos_dns_sidecar::{daemon, guard, resolvconf};
use tracing::{error, info, warn};

/// Node-local DNS for Apache Mesos clusters, answering Mesos-DNS's names.
#[derive(Debug, Parser)]
#[command(name = "mesos-dns-sidecar", version, about, args_override_self = true)]
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
    resolvers: Option<Vec<config::Upstream>>,
    /// Don't forward names outside the cluster domain: refuse them (as `externalon: false`).
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
        #[arg(long, default_value = config::RESOLV_CONF, global = true)]
        resolv_conf: PathBuf,
        /// Where the original is saved.
        #[arg(long, default_value = config::SAVED_RESOLV_CONF, global = true)]
        saved: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum ResolvconfAction {
    /// Save the original and point resolv.conf at the daemon once it answers; when it does not
    /// answer within --wait, the original stays saved and the guard switches later.
    Install {
        /// Nameserver lines to write, in order.
        #[arg(long = "nameserver", default_value = "127.0.0.1")]
        nameservers: Vec<String>,
        /// The daemon address to health-check (default: from --config, else 127.0.0.1:53).
        #[arg(long)]
        check: Option<SocketAddr>,
        /// How long to wait for the daemon to answer, seconds.
        #[arg(long, default_value_t = 15)]
        wait: u64,
    },
    /// Put the original resolv.conf back, byte for byte (or its symlink).
    Restore,
    /// Say which way the host resolves: daemon, fallback, pending or not installed.
    Status,
    /// Keep the host resolving: fall back to the original resolvers while the daemon does not
    /// answer, switch back when it does, finish a pending install (runs until stopped).
    Guard {
        /// Nameserver lines to write in daemon mode, in order.
        #[arg(long = "nameserver", default_value = "127.0.0.1")]
        nameservers: Vec<String>,
        /// The daemon address to probe (default: from --config, else 127.0.0.1:53).
        #[arg(long)]
        check: Option<SocketAddr>,
        /// Milliseconds between probes.
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
        /// Milliseconds without an answer before the host falls back.
        #[arg(long, default_value_t = 750)]
        fail_after_ms: u64,
        /// The daemon's systemd unit: while it is starting (loading state), stopping or
        /// reloading, the fallback waits up to --busy-max-ms.
        #[arg(long)]
        unit: Option<String>,
        /// The longest a starting, stopping or reloading unit may stay silent, milliseconds.
        #[arg(long, default_value_t = 15000)]
        busy_max_ms: u64,
    },
    /// Replace the saved original with new content (from a file, or - for standard input):
    /// what the DHCP and NetworkManager hooks call when the network hands out new resolvers.
    UpdateOriginal {
        /// The new resolv.conf content.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Nameserver lines of daemon mode, to re-render resolv.conf.
        #[arg(long = "nameserver", default_value = "127.0.0.1")]
        nameservers: Vec<String>,
    },
}

/// The daemon's address and zone as the configuration says (for probing it), or the packaged
/// defaults.
fn probe_target(cli: &Cli, check: Option<SocketAddr>) -> (SocketAddr, Name) {
    let config = cli
        .config
        .as_ref()
        .and_then(|p| Config::load(p).ok())
        .map(|l| l.config)
        .unwrap_or_default();
    let addr = check.unwrap_or_else(|| {
        let ip = if config.listener.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            config.listener
        };
        SocketAddr::new(ip, config.port)
    });
    let zone = Name::from_ascii(format!("{}.", config.domain.trim_end_matches('.')))
        .unwrap_or_else(|_| Name::root());
    (addr, zone)
}

fn resolvconf_command(cli: &Cli, action: &ResolvconfAction, paths: &resolvconf::Paths) -> ExitCode {
    let result = match action {
        ResolvconfAction::Install {
            nameservers,
            check,
            wait,
        } => {
            let (addr, zone) = probe_target(cli, *check);
            let setup = match resolvconf::save_original(paths) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("mesos-dns-sidecar: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut prober = guard::Prober::new(addr, zone);
            if !prober.wait_alive(Duration::from_secs(*wait), Duration::from_millis(500)) {
                eprintln!(
                    "mesos-dns-sidecar: no DNS answer from {addr} within {wait} s; resolv.conf left unchanged (original saved: mesos-dns-sidecar-guard switches once the daemon answers)"
                );
                return ExitCode::FAILURE;
            }
            resolvconf::switch(paths, resolvconf::Mode::Daemon, nameservers)
                .map(|_| println!("installed (was {setup:?})"))
        }
        ResolvconfAction::Restore => resolvconf::restore(paths).map(|_| println!("restored")),
        ResolvconfAction::Status => {
            println!("{}", resolvconf::status(paths));
            Ok(())
        }
        ResolvconfAction::Guard {
            nameservers,
            check,
            interval_ms,
            fail_after_ms,
            unit,
            busy_max_ms,
        } => {
            let (daemon, zone) = probe_target(cli, *check);
            guard::run(
                paths,
                &guard::GuardSettings {
                    daemon,
                    zone,
                    nameservers: nameservers.clone(),
                    interval: Duration::from_millis((*interval_ms).max(50)),
                    fail_after: Duration::from_millis(*fail_after_ms),
                    unit: unit.clone(),
                    busy_max: Duration::from_millis(*busy_max_ms),
                },
            )
        }
        ResolvconfAction::UpdateOriginal { from, nameservers } => {
            let content = if from.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
            } else {
                std::fs::read(from)
            };
            match content {
                Ok(bytes) => resolvconf::update_original(paths, &bytes, nameservers).map(|done| {
                    if done {
                        println!("original updated");
                    } else {
                        println!("not installed: nothing to update");
                    }
                }),
                Err(e) => {
                    eprintln!("mesos-dns-sidecar: {}: {e}", from.display());
                    return ExitCode::FAILURE;
                }
            }
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

/// glog's flags that only say where logs go (and `-vmodule`, per-file verbosity of Go source
/// files): this daemon always logs to standard error, so they are accepted and have nothing
/// to do.
const GLOG_DESTINATION_FLAGS: &[&str] = &[
    "logtostderr",
    "alsologtostderr",
    "stderrthreshold",
    "log_dir",
    "log_backtrace_at",
    "vmodule",
];

/// glog's flags that take a value, which Go's flag syntax may give as the next argument.
const GLOG_VALUE_FLAGS: &[&str] = &["stderrthreshold", "log_dir", "log_backtrace_at", "vmodule"];

/// The log filter of a glog verbosity level.
fn verbosity_filter(level: &str) -> Option<&'static str> {
    match level.parse::<u32>().ok()? {
        0 => Some("info"),
        1 => Some("debug"),
        _ => Some("trace"),
    }
}

/// Rewrites Go-style `-config FILE` / `-config=FILE`, Mesos-DNS's verbosity (`-v`, `-vv`,
/// glog's `-v=N` and `-v N`) and glog's log-destination flags (with their values, `=`-joined
/// or not) to clap's spelling, so Mesos-DNS units and scripts work unchanged.
fn go_style_args(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut args = args.peekable();
    let mut out = Vec::new();
    while let Some(a) = args.next() {
        let Some(rest) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            out.push(a);
            continue;
        };
        let (name, value) = match rest.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (rest, None),
        };
        match (name, value) {
            ("v", None) => {
                let level = args.peek().and_then(|next| verbosity_filter(next));
                if level.is_some() {
                    args.next();
                }
                out.push(format!("--log-level={}", level.unwrap_or("debug")));
                continue;
            }
            ("vv", None) => {
                out.push("--log-level=trace".to_string());
                continue;
            }
            ("v", Some(level)) => {
                let filter = verbosity_filter(level).unwrap_or("trace");
                out.push(format!("--log-level={filter}"));
                continue;
            }
            _ => {}
        }
        if GLOG_DESTINATION_FLAGS.contains(&name) {
            if value.is_none() && GLOG_VALUE_FLAGS.contains(&name) {
                args.next();
            }
            continue;
        }
        if !a.starts_with("--") && LONG_OPTIONS.contains(&name) {
            out.push(format!("-{a}"));
        } else {
            out.push(a);
        }
    }
    out
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
        config.external_on = false;
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
        return resolvconf_command(&cli, action, &paths);
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
    // Before any other thread exists: it takes systemd's descriptors and clears LISTEN_*.
    let sockets = Sockets::from_environment();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_until_stopped(cli, config, sockets))
}

/// Runs the daemon; SIGHUP re-reads the configuration and starts the daemon's parts anew with
/// it on the same sockets, carrying the served state over, before the old parts stop: there is
/// no moment without a reader on the sockets. An invalid new configuration is reported and the
/// running one stays. SIGTERM stops reading and answers what is in flight before exiting; under
/// socket activation the unread queries wait in the kernel for the next process.
async fn serve_until_stopped(cli: &Cli, config: Config, sockets: Sockets) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
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
            "-v=2",
            "-logtostderr",
            "-logtostderr=true",
            "-v=1",
            "--port",
            "5",
            "-p",
            "-v",
            "2",
            "-log_dir",
            "/var/log",
            "-stderrthreshold=INFO",
            "-vmodule",
            "x=2",
            "-v",
            "--demo",
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
                "--log-level=trace",
                "--log-level=debug",
                "--port",
                "5",
                "-p",
                "--log-level=trace",
                "--log-level=debug",
                "--demo"
            ]
        );
    }
}
