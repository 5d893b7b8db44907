//! Safe on any network: who gets answers, how fast, and what ANY costs.
//!
//! The client side of these tests lives in a network namespace the test creates, joined to the
//! host over a veth pair (root only; without root the tests print why and pass). The host end
//! has `198.18.N.1/24`, the namespace end `198.18.N.2/24` (a subnet attached to the host: local
//! by default) plus `198.19.N.2/32` behind a host route (not attached: a remote client).

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::json;

/// A network namespace with a veth pair to the host, removed on drop.
struct Netns {
    name: String,
    n: u8,
}

static NEXT: AtomicU8 = AtomicU8::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates the namespace, or says why it cannot (not root, no `ip`, no netns support).
    fn create() -> Result<Netns, String> {
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            != 0
        {
            return Err("not root".into());
        }
        // Distinct per test and per process, so parallel tests and runs don't collide.
        let k = u32::from(NEXT.fetch_add(1, Ordering::Relaxed) % 6);
        let n = (10 + (std::process::id() % 40) * 6 + k) as u8;
        let ns = Netns {
            name: format!("mdsec{}-{n}", std::process::id()),
            n,
        };
        let (host, peer) = (ns.host_if(), ns.peer_if());
        let (h, p, remote) = (
            format!("{}/24", ns.host_ip()),
            format!("{}/24", ns.local_client()),
            format!("{}/32", ns.remote_client()),
        );
        ip(&["netns", "add", &ns.name])?;
        ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", &peer, "netns", &ns.name])?;
        ip(&["addr", "add", &h, "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &p, "dev", &peer])?;
        inside(&["addr", "add", &remote, "dev", &peer])?;
        inside(&["link", "set", &peer, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        let host_ip = ns.host_ip().to_string();
        inside(&["route", "add", "default", "via", &host_ip])?;
        let via = ns.local_client().to_string();
        ip(&[
            "route",
            "add",
            &format!("198.19.{}.0/24", ns.n),
            "via",
            &via,
            "dev",
            &host,
        ])?;
        Ok(ns)
    }

    fn host_if(&self) -> String {
        format!("mds{}h{}", std::process::id() % 10000, self.n)
    }

    fn peer_if(&self) -> String {
        format!("mds{}p{}", std::process::id() % 10000, self.n)
    }

    /// The host's address on the pair, where the daemon gets an extra listener.
    fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.n, 1)
    }

    /// A client address in a subnet attached to the host.
    fn local_client(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.n, 2)
    }

    /// A client address in no subnet attached to the host.
    fn remote_client(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.n, 2)
    }

    /// Runs `f` on a thread inside the namespace (sockets it opens live there).
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let fd = File::open(&path).expect("open netns");
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if()]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Skips the test (returns `None`, printing why) when no namespace can be made.
fn netns_or_skip(test: &str) -> Option<Netns> {
    match Netns::create() {
        Ok(ns) => Some(ns),
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

/// One UDP query from `from` to `to`, sent up to three times a second apart as a stub
/// resolver would (a datagram can be lost on a loaded machine); the first answer, if any.
fn udp_from(from: Ipv4Addr, to: SocketAddr, q: &Message) -> Option<Message> {
    let sock = UdpSocket::bind((from, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = vec![0u8; 65535];
    for _ in 0..3 {
        sock.send_to(&q.to_vec().unwrap(), to).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Message::from_vec(&buf[..n]).ok();
        }
    }
    None
}

/// A TCP connection from `from` to `to`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> Option<TcpStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(to) = to else {
        return None;
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .ok()?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )
    .ok()?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).ok()?;
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    Some(s)
}

/// One TCP query from `from` to `to`.
fn tcp_from(from: Ipv4Addr, to: SocketAddr, q: &Message) -> Option<Message> {
    use std::io::{Read, Write};
    let mut s = connect_from(from, to)?;
    let bytes = q.to_vec().ok()?;
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    s.write_all(&out).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Message::from_vec(&buf).ok()
}

/// The status of an HTTP GET from `from`, 0 when none came.
fn http_status_from(from: Ipv4Addr, to: SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Some(mut s) = connect_from(from, to) else {
        return 0;
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn rcode(m: &Option<Message>) -> Option<ResponseCode> {
    m.as_ref().map(|m| m.metadata.response_code)
}

#[test]
fn a_non_local_client_is_refused_by_default_and_answered_when_allowed() {
    let Some(ns) = netns_or_skip("a_non_local_client_is_refused_by_default") else {
        return;
    };
    let (d, _dir) = start_with_config(
        json!({"extraListeners": [ns.host_ip().to_string()]}),
        &["--no-forward"],
    );
    let to = SocketAddr::from((ns.host_ip(), d.addr.port()));
    let (local, remote) = (ns.local_client(), ns.remote_client());
    let (l, r, rt) = ns.run(move || {
        let q = query("leader.mesos.", RecordType::A, None);
        (
            udp_from(local, to, &q),
            udp_from(remote, to, &q),
            tcp_from(remote, to, &q),
        )
    });
    assert_eq!(rcode(&l), Some(ResponseCode::NoError), "attached subnet");
    assert!(!l.unwrap().answers.is_empty());
    assert_eq!(rcode(&r), Some(ResponseCode::Refused), "remote over UDP");
    assert!(r.unwrap().answers.is_empty());
    assert_eq!(rcode(&rt), Some(ResponseCode::Refused), "remote over TCP");
    assert!(metric(&d, "mesos_dns_sidecar_refused_clients_total") >= 2.0);
    drop(d);

    // Allowed by the key: answered; refused by the other key: REFUSED even from an attached
    // subnet.
    let remote_net = format!("198.19.{}.0/24", ns.n);
    let (d, _dir) = start_with_config(
        json!({"extraListeners": [ns.host_ip().to_string()], "allowClients": [remote_net],
               "refuseClients": [format!("{local}/32")]}),
        &["--no-forward"],
    );
    let to = SocketAddr::from((ns.host_ip(), d.addr.port()));
    let (l, r, rt) = ns.run(move || {
        let q = query("leader.mesos.", RecordType::A, None);
        (
            udp_from(local, to, &q),
            udp_from(remote, to, &q),
            tcp_from(remote, to, &q),
        )
    });
    assert_eq!(rcode(&r), Some(ResponseCode::NoError), "allowed remote");
    assert!(!r.unwrap().answers.is_empty());
    assert_eq!(
        rcode(&rt),
        Some(ResponseCode::NoError),
        "allowed remote, TCP"
    );
    assert_eq!(rcode(&l), Some(ResponseCode::Refused), "refused local");
    // Loopback is always answered.
    assert_eq!(
        d.udp("leader.mesos.", RecordType::A, None)
            .metadata
            .response_code,
        ResponseCode::NoError
    );
}

#[test]
fn the_http_api_follows_the_client_rules() {
    let Some(ns) = netns_or_skip("the_http_api_follows_the_client_rules") else {
        return;
    };
    let (d, _dir) = start_with_config(json!({"HTTPListener": "0.0.0.0"}), &["--no-forward"]);
    let to = SocketAddr::from((ns.host_ip(), d.http.port()));
    let (local, remote) = (ns.local_client(), ns.remote_client());
    let (l, r) = ns.run(move || {
        (
            http_status_from(local, to, "/v1/version"),
            http_status_from(remote, to, "/v1/version"),
        )
    });
    assert_eq!(l, 200, "attached subnet");
    assert_eq!(r, 403, "remote client");
    assert!(metric(&d, "mesos_dns_sidecar_http_clients_refused_total") >= 1.0);
}

#[test]
fn a_flood_from_one_source_is_rate_limited_with_slip() {
    let Some(ns) = netns_or_skip("a_flood_from_one_source_is_rate_limited") else {
        return;
    };
    let (d, _dir) = start_with_config(
        json!({"extraListeners": [ns.host_ip().to_string()], "rateLimit": 20, "rateLimitSlip": 2}),
        &["--no-forward"],
    );
    let to = SocketAddr::from((ns.host_ip(), d.addr.port()));
    let from = ns.local_client();
    const SENT: usize = 300;
    let (full, slipped) = ns.run(move || {
        let sock = UdpSocket::bind((from, 0)).unwrap();
        let q = query("leader.mesos.", RecordType::A, None)
            .to_vec()
            .unwrap();
        for _ in 0..SENT {
            sock.send_to(&q, to).unwrap();
        }
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let (mut full, mut slipped) = (0, 0);
        let mut buf = [0u8; 1500];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let m = Message::from_vec(&buf[..n]).unwrap();
            if m.metadata.truncation && m.answers.is_empty() {
                slipped += 1;
            } else if !m.answers.is_empty() {
                full += 1;
            }
        }
        (full, slipped)
    });
    // 20 per second (a burst may straddle two counting windows).
    assert!((1..=40).contains(&full), "full answers: {full}");
    assert!(slipped >= 1, "every 2nd limited answer slips as TC");
    assert!(full + slipped < SENT, "the rest are dropped");
    assert!(metric(&d, "mesos_dns_sidecar_rate_limited_responses_total") >= 1.0);
    assert!(metric(&d, "mesos_dns_sidecar_rate_limit_slips_total") >= 1.0);
    // Loopback is never limited.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answered = 0;
    let mut buf = [0u8; 1500];
    for _ in 0..50 {
        let q = query("leader.mesos.", RecordType::A, None);
        sock.send_to(&q.to_vec().unwrap(), d.addr).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if !Message::from_vec(&buf[..n]).unwrap().answers.is_empty() {
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 50);
}

#[test]
fn any_over_udp_from_a_non_loopback_client_is_truncated() {
    let Some(ns) = netns_or_skip("any_over_udp_from_a_non_loopback_client_is_truncated") else {
        return;
    };
    let (d, _dir) = start_with_config(
        json!({"extraListeners": [ns.host_ip().to_string()]}),
        &["--no-forward"],
    );
    let to = SocketAddr::from((ns.host_ip(), d.addr.port()));
    let from = ns.local_client();
    let (u, t) = ns.run(move || {
        let q = query("slave.mesos.", RecordType::ANY, Some(1232));
        (udp_from(from, to, &q), tcp_from(from, to, &q))
    });
    let u = u.expect("UDP answer");
    assert!(u.metadata.truncation && u.answers.is_empty(), "{u:?}");
    let t = t.expect("TCP answer");
    assert!(!t.answers.is_empty(), "the full answer over TCP");
    assert!(metric(&d, "mesos_dns_sidecar_any_truncated_total") >= 1.0);
    // From loopback, ANY over UDP is answered as before.
    let m = d.udp("slave.mesos.", RecordType::ANY, Some(1232));
    assert!(!m.answers.is_empty());
}

#[test]
fn default_listeners_are_loopback() {
    // Without --listener: a config without `listener`/`HTTPListener` serves on 127.0.0.1 only.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let (port, http) = (free_port(), free_port());
    let empty = dir.path().join("resolv.conf");
    std::fs::write(&empty, "").unwrap();
    std::fs::write(
        &cfg,
        json!({"stateFile": fixture(CLUSTER), "port": port, "httpport": http,
               "resolvConf": empty, "savedResolvConf": dir.path().join("none")})
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
        .args(["--config", cfg.to_str().unwrap(), "--log-level", "warn"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let sockets = loop {
        let out = Command::new("ss").args(["-Hlntu"]).output();
        let Ok(out) = out else {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("skipping default_listeners_are_loopback: no ss");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let ours: Vec<String> = text
            .lines()
            .filter(|l| l.contains(&format!(":{port} ")) || l.contains(&format!(":{http} ")))
            .map(str::to_string)
            .collect();
        if ours.len() >= 3 || Instant::now() > deadline {
            break ours;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(sockets.len(), 3, "DNS UDP, DNS TCP, HTTP: {sockets:?}");
    for l in &sockets {
        let local = l.split_whitespace().nth(4).unwrap_or("");
        let addr: Option<IpAddr> = local.rsplit_once(':').and_then(|(a, _)| a.parse().ok());
        assert_eq!(addr, Some(IpAddr::from([127, 0, 0, 1])), "{l}");
    }
}

#[test]
fn check_config_names_bad_security_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (json!({"allowClients": ["10.0.0.0/40"]}), "allowClients"),
        (
            json!({"refuseClients": ["not-an-address"]}),
            "refuseClients",
        ),
        (json!({"rateLimit": "fast"}), "rateLimit"),
        (json!({"httpToken": "has space"}), "httpToken"),
        (json!({"httpMaxConnections": 0}), "httpMaxConnections"),
        (
            json!({"httpHeaderTimeoutSeconds": 0}),
            "httpHeaderTimeoutSeconds",
        ),
    ];
    for (mut doc, key) in cases {
        doc["masters"] = json!(["10.0.0.1:5050"]);
        let path = dir.path().join("c.json");
        std::fs::write(&path, doc.to_string()).unwrap();
        let out = sidecar(&["--config", path.to_str().unwrap(), "--check-config"]);
        assert_eq!(out.status.code(), Some(2), "{doc}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("`{key}`")), "{doc}: {err}");
    }
    let path = dir.path().join("ok.json");
    std::fs::write(
        &path,
        json!({"masters": ["10.0.0.1:5050"], "allowClients": ["local", "10.0.0.0/8", "fd00::/8"],
               "refuseClients": ["10.9.0.0/16"], "rateLimit": 50, "rateLimitSlip": 3,
               "httpToken": "t0ken", "httpMaxConnections": 64, "httpHeaderTimeoutSeconds": 5})
        .to_string(),
    )
    .unwrap();
    let out = sidecar(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
