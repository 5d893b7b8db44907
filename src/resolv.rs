//! Where forwarded queries go: the `resolvers` key, else the host's original resolv.conf saved
//! at install, else the system resolv.conf, minus any address that is this daemon itself.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;

/// Rounds over the upstream list when resolv.conf does not say (`options attempts`; glibc's
/// default too).
pub const DEFAULT_ATTEMPTS: u32 = 2;

/// The upstreams chosen for forwarding, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamPlan {
    /// Upstream addresses in priority order.
    pub addrs: Vec<SocketAddr>,
    /// Where they were read from (for the log).
    pub source: String,
    /// resolv.conf `options rotate`.
    pub rotate: bool,
    /// resolv.conf `options timeout` (per attempt).
    pub attempt_timeout: Duration,
    /// resolv.conf `options attempts` (rounds over the list).
    pub attempts: u32,
    /// Addresses left out because they point back at this daemon.
    pub dropped_self: Vec<SocketAddr>,
}

/// Why no upstream plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum ResolvError {
    /// A resolv.conf exists but could not be read or parsed.
    #[error("cannot use {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What forwarding uses from a resolv.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines, port 53.
    pub nameservers: Vec<SocketAddr>,
    /// `options rotate`.
    pub rotate: bool,
    /// `options timeout:N` (at least 1 s).
    pub timeout: Duration,
    /// `options attempts:N` (at least 1).
    pub attempts: u32,
}

/// Parses resolv.conf text; lines it doesn't understand are skipped, as the C library does.
pub fn parse_resolv_conf(bytes: &[u8]) -> ResolvConf {
    let (conf, _errors) = resolv_conf::Config::parse_with_errors(bytes);
    ResolvConf {
        nameservers: conf
            .nameservers
            .iter()
            .map(|ns| SocketAddr::new(ns.into(), 53))
            .collect(),
        rotate: conf.rotate,
        timeout: Duration::from_secs(conf.timeout.max(1) as u64),
        attempts: conf.attempts.max(1),
    }
}

/// Reads a resolv.conf into (nameservers, rotate, timeout, attempts).
fn read_resolv_conf(path: &Path) -> Result<(Vec<SocketAddr>, bool, Duration, u32), ResolvError> {
    let bytes = std::fs::read(path).map_err(|e| ResolvError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let c = parse_resolv_conf(&bytes);
    Ok((c.nameservers, c.rotate, c.timeout, c.attempts))
}

/// Where systemd-resolved lists the upstreams it uses itself.
const RESOLVED_UPSTREAMS: &str = "/run/systemd/resolve/resolv.conf";

/// When a resolv.conf names only systemd-resolved's stub (127.0.0.53), the real upstreams are
/// in resolved's own list; forwarding to them directly saves a hop and keeps working while the
/// stub listener is off.
fn behind_resolved_stub(addrs: &[SocketAddr], resolved_list: &Path) -> Option<Vec<SocketAddr>> {
    let stub: IpAddr = [127, 0, 0, 53].into();
    if addrs.is_empty() || addrs.iter().any(|a| a.ip() != stub) {
        return None;
    }
    let (upstreams, ..) = read_resolv_conf(resolved_list).ok()?;
    (!upstreams.is_empty()).then_some(upstreams)
}

/// The host's resolver list as it is now: when the original resolv.conf saved at install was
/// a symlink (systemd-resolved, resolvconf, NetworkManager), the file it pointed to, which
/// those managers keep current; else the saved copy (which the package's DHCP hooks update);
/// else, before install, the system resolv.conf.
pub fn original_resolv_conf(config: &Config) -> PathBuf {
    let saved = &config.saved_resolv_conf;
    let mut link = saved.clone().into_os_string();
    link.push(".link");
    if let Ok(target) = std::fs::read_to_string(&link) {
        let target = Path::new(target.trim_end_matches('\n'));
        let base = config.resolv_conf.parent().unwrap_or(Path::new("/"));
        let live = base.join(target);
        if live.is_file() {
            return live;
        }
    }
    if saved.exists() {
        saved.clone()
    } else {
        config.resolv_conf.clone()
    }
}

/// Whether `upstream` is one of our own listen addresses: the same address and port, or, for a
/// wildcard listener, a loopback or local address on our port.
pub fn is_self(upstream: SocketAddr, listens: &[SocketAddr], local_ips: &[IpAddr]) -> bool {
    listens.iter().any(|l| {
        upstream.port() == l.port()
            && (upstream.ip() == l.ip()
                || (l.ip().is_unspecified()
                    && (upstream.ip().is_loopback() || local_ips.contains(&upstream.ip()))))
    })
}

/// Chooses the upstreams for `config`, given our listen addresses and the host's addresses.
pub fn plan(
    config: &Config,
    listens: &[SocketAddr],
    local_ips: &[IpAddr],
) -> Result<UpstreamPlan, ResolvError> {
    let (addrs, source, rotate, attempt_timeout, attempts) = if !config.resolvers.is_empty() {
        let addrs = config.resolvers.iter().map(|r| r.addr).collect();
        (
            addrs,
            "config key resolvers".to_string(),
            false,
            Duration::from_secs(config.timeout),
            DEFAULT_ATTEMPTS,
        )
    } else {
        let path = original_resolv_conf(config);
        let path = &path;
        let (addrs, rotate, timeout, attempts) = read_resolv_conf(path)?;
        match behind_resolved_stub(&addrs, Path::new(RESOLVED_UPSTREAMS)) {
            Some(real) => (
                real,
                RESOLVED_UPSTREAMS.to_string(),
                rotate,
                timeout,
                attempts,
            ),
            None => (addrs, path.display().to_string(), rotate, timeout, attempts),
        }
    };
    let (addrs, dropped_self): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
        .into_iter()
        .partition(|a| !is_self(*a, listens, local_ips));
    Ok(UpstreamPlan {
        addrs,
        source,
        rotate,
        attempt_timeout,
        attempts,
        dropped_self,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(dir: &Path, saved: Option<&str>, system: &str) -> Config {
        let sys = dir.join("resolv.conf");
        std::fs::write(&sys, system).unwrap();
        let saved_path = dir.join("resolv.conf.orig");
        if let Some(s) = saved {
            std::fs::write(&saved_path, s).unwrap();
        }
        Config {
            resolv_conf: sys,
            saved_resolv_conf: saved_path,
            ..Config::default()
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_symlinked_original_is_read_through_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let c = config_with(
            dir.path(),
            Some("nameserver 10.0.0.1\n"),
            "nameserver 127.0.0.1\n",
        );
        assert_eq!(original_resolv_conf(&c), c.saved_resolv_conf);
        // The original pointed at a manager's file, relative to /etc as symlinks often are.
        let live = dir.path().join("run/nm/resolv.conf");
        std::fs::create_dir_all(live.parent().unwrap()).unwrap();
        std::fs::write(&live, "nameserver 10.9.9.9\n").unwrap();
        std::fs::write(
            dir.path().join("resolv.conf.orig.link"),
            "run/nm/resolv.conf\n",
        )
        .unwrap();
        assert_eq!(original_resolv_conf(&c), live);
        let p = plan(&c, &[sa("127.0.0.1:53")], &[]).unwrap();
        assert_eq!(p.addrs, [sa("10.9.9.9:53")]);
        // The manager rewrites its file: the next plan follows.
        std::fs::write(&live, "nameserver 10.8.8.8\n").unwrap();
        assert_eq!(
            plan(&c, &[sa("127.0.0.1:53")], &[]).unwrap().addrs,
            [sa("10.8.8.8:53")]
        );
        // Its file gone (manager stopped): the saved bytes.
        std::fs::remove_file(&live).unwrap();
        assert_eq!(
            plan(&c, &[sa("127.0.0.1:53")], &[]).unwrap().addrs,
            [sa("10.0.0.1:53")]
        );
    }

    #[test]
    fn resolvers_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config_with(
            dir.path(),
            Some("nameserver 10.0.0.1\n"),
            "nameserver 10.0.0.2\n",
        );
        c.resolvers = vec![
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2:5353".parse().unwrap(),
        ];
        let p = plan(&c, &[sa("127.0.0.1:53")], &[]).unwrap();
        assert_eq!(p.addrs, [sa("192.0.2.1:53"), sa("192.0.2.2:5353")]);
    }

    #[test]
    fn saved_copy_before_system_file_with_options() {
        let dir = tempfile::tempdir().unwrap();
        let saved = "search example.internal\nnameserver 10.0.0.1\nnameserver 10.0.0.3\noptions timeout:2 attempts:3 rotate\n";
        let c = config_with(dir.path(), Some(saved), "nameserver 127.0.0.1\n");
        let p = plan(&c, &[sa("127.0.0.1:53")], &[]).unwrap();
        assert_eq!(p.addrs, [sa("10.0.0.1:53"), sa("10.0.0.3:53")]);
        assert!(p.rotate);
        assert_eq!((p.attempt_timeout, p.attempts), (Duration::from_secs(2), 3));

        let other = tempfile::tempdir().unwrap();
        let c = config_with(other.path(), None, "nameserver 10.9.9.9\n");
        let p = plan(&c, &[sa("127.0.0.1:53")], &[]).unwrap();
        assert_eq!(p.addrs, [sa("10.9.9.9:53")]);
    }

    #[test]
    fn our_own_addresses_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let system = "nameserver 127.0.0.1\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nnameserver 10.0.0.9\n";
        let c = config_with(dir.path(), None, system);
        // Listening on every address, port 53: loopback and our own 10.1.1.1 are us.
        let p = plan(&c, &[sa("0.0.0.0:53")], &["10.1.1.1".parse().unwrap()]).unwrap();
        assert_eq!(p.addrs, [sa("10.0.0.9:53")]);
        assert_eq!(p.dropped_self.len(), 3);
        // Listening on 127.0.0.1 only: 127.0.0.53 (systemd-resolved) is someone else.
        let p = plan(&c, &[sa("127.0.0.1:53")], &[]).unwrap();
        assert_eq!(
            p.addrs,
            [sa("127.0.0.53:53"), sa("10.1.1.1:53"), sa("10.0.0.9:53")]
        );
        // A different port is not us.
        assert!(!is_self(sa("127.0.0.1:53"), &[sa("127.0.0.1:5353")], &[]));
    }

    #[test]
    fn resolved_stub_is_replaced_by_resolveds_own_upstreams() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("resolved.conf");
        std::fs::write(&list, "nameserver 192.0.2.53\nnameserver 192.0.2.54\n").unwrap();
        let stub = [sa("127.0.0.53:53")];
        assert_eq!(
            behind_resolved_stub(&stub, &list),
            Some(vec![sa("192.0.2.53:53"), sa("192.0.2.54:53")])
        );
        assert_eq!(behind_resolved_stub(&[sa("10.0.0.1:53")], &list), None);
        assert_eq!(
            behind_resolved_stub(&stub, &dir.path().join("missing")),
            None
        );
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let c = Config {
            resolv_conf: "/nonexistent/resolv.conf".into(),
            saved_resolv_conf: "/nonexistent/saved".into(),
            ..Config::default()
        };
        assert!(plan(&c, &[], &[]).is_err());
    }
}
