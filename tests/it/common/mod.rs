//! Shared helpers for black-box tests: start the real binary, talk DNS to it over sockets.

#![allow(dead_code)]

pub mod master;
pub mod stream_master;
pub mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// Path of one of the project's own fixtures (`tests/fixtures/NAME`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The project's hand-written cluster state (`tests/fixtures/cluster.json`).
pub const CLUSTER: &str = "cluster.json";

/// A free port on 127.0.0.1 for both UDP and TCP (bound and released; the daemon binds it next).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running daemon, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    /// The HTTP API's address.
    pub http: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` plus `--listener 127.0.0.1 --port P`, forwarding off (so no
/// test ever sends a query to the host's resolvers).
pub fn start(args: &[&str]) -> Daemon {
    let mut all = args.to_vec();
    all.push("--no-forward");
    start_on(&all, free_port())
}

/// Starts the binary with a config document (written to a temporary file, kept alive by the
/// returned guard) serving the cluster fixture, plus `args`.
pub fn start_with_config(config: serde_json::Value, args: &[&str]) -> (Daemon, tempfile::TempDir) {
    let (d, dir) = start_with_config_unready(config, args);
    d.wait_answering("leader.mesos.");
    (d, dir)
}

/// As `start_with_config`, without waiting for the daemon to have cluster state.
pub fn start_with_config_unready(
    mut config: serde_json::Value,
    args: &[&str],
) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    if config.get("stateFile").is_none() {
        config["stateFile"] = fixture(CLUSTER).to_str().unwrap().into();
    }
    // Never read the host's resolv.conf in tests unless a test says so.
    if config.get("resolvConf").is_none() {
        let empty = dir.path().join("resolv.conf");
        std::fs::write(&empty, "").unwrap();
        config["resolvConf"] = empty.to_str().unwrap().into();
        config["savedResolvConf"] = dir.path().join("none").to_str().unwrap().into();
    }
    let path = dir.path().join("config.json");
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let d = spawn_on(&all, free_port());
    (d, dir)
}

/// Starts the binary on `port` and waits until it answers cluster names.
pub fn start_on(args: &[&str], port: u16) -> Daemon {
    let d = spawn_on(args, port);
    d.wait_answering("leader.mesos.");
    d
}

/// Starts the binary on `port` without waiting for it; it logs warnings, or what the
/// `DAEMON_LOG` filter asks for (for benches: `DAEMON_LOG=mesos_dns_sidecar=debug`).
pub fn spawn_on(args: &[&str], port: u16) -> Daemon {
    let http_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
        .args(args)
        .args([
            "--listener",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-level",
            &std::env::var("DAEMON_LOG").unwrap_or("warn".into()),
            "--http-port",
            &http_port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start daemon");
    Daemon {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        http: SocketAddr::from(([127, 0, 0, 1], http_port)),
    }
}

impl Daemon {
    /// Waits until the daemon answers `name` with NOERROR (its state is loaded).
    pub fn wait_answering(&self, name: &str) {
        self.wait_for(name, RecordType::A, |m| {
            m.metadata.response_code == ResponseCode::NoError
        });
    }

    /// Polls `name` until `ok` holds for the UDP answer, for at most 10 seconds.
    pub fn wait_for(
        &self,
        name: &str,
        rtype: RecordType,
        ok: impl Fn(&Message) -> bool,
    ) -> Message {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = try_udp(
                self.addr,
                &query(name, rtype, None),
                Duration::from_millis(200),
            ) {
                if ok(&m) {
                    return m;
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon never answered {name} as expected"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Queries over UDP, optionally with EDNS and a payload size.
    pub fn udp(&self, name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
        udp(self.addr, &query(name, rtype, edns))
    }

    /// Queries over TCP.
    pub fn tcp(&self, name: &str, rtype: RecordType) -> Message {
        Message::from_vec(&tcp_raw(
            self.addr,
            &query(name, rtype, None).to_vec().unwrap(),
        ))
        .unwrap()
    }
}

/// A recursive-desired query message.
pub fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.metadata.op_code = OpCode::Query;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

/// Sends raw bytes over UDP and returns the raw answer, if one comes within `timeout`.
pub fn udp_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(timeout)).unwrap();
    sock.send_to(bytes, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Sends `q` over UDP and parses the answer, if one comes within `timeout`.
pub fn try_udp(addr: SocketAddr, q: &Message, timeout: Duration) -> Option<Message> {
    let raw = udp_raw(addr, &q.to_vec().unwrap(), timeout)?;
    Message::from_vec(&raw).ok()
}

/// Sends `q` over UDP and parses the answer (panics on timeout).
pub fn udp(addr: SocketAddr, q: &Message) -> Message {
    let raw = udp_raw(addr, &q.to_vec().unwrap(), Duration::from_secs(3)).expect("udp answer");
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

/// Sends one length-prefixed message over a new TCP connection and returns the raw answer.
pub fn tcp_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    s.write_all(&out).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// The answer section's values as sorted text (`A 1.2.3.4`, `SRV 0 1 80 target.`).
pub fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

/// The value of metric `name` (a plain, unlabelled sample) from the daemon's `/metrics`.
pub fn metric(d: &Daemon, name: &str) -> f64 {
    let (_, body) = master::http_get(d.http, "/metrics");
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{body}"))
}

/// The daemon's peak resident memory so far, in KiB.
pub fn peak_rss_kib(d: &Daemon) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", d.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Whether the tests run as root (port 53, namespaces); root-only tests skip otherwise.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs the binary with `args` (a host integration command) and waits for it.
pub fn sidecar(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Whether a test can run here: `missing` says what it lacks. Outside CI a missing
/// prerequisite skips the test, saying why; in CI it fails it, so a green run never hides a
/// part that was not tested.
pub fn prerequisite_met(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run in CI: {why}");
    }
    eprintln!("skipping {test}: {why}");
    false
}
