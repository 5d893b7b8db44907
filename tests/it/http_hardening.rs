//! The HTTP API cannot hurt DNS: slow and unfinished request heads are closed within
//! `httpHeaderTimeoutSeconds`, connections are capped, a flood of idle connections leaves DNS
//! over TCP answering even with few descriptors, and the state-revealing endpoints can require
//! a bearer token (which a relay's followers send).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::master::{cluster_json, FakeMaster};
use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// Whether the server has closed `s` (EOF or reset), looking without blocking for long.
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slowloris_and_unfinished_heads_are_closed_within_the_timeout() {
    let (d, _dir) = start_with_config(json!({"httpHeaderTimeoutSeconds": 1}), &["--no-forward"]);
    let connect = || TcpStream::connect(d.http).unwrap();
    // Slowloris: a header line every 200 ms, never the blank line.
    let mut slow: Vec<TcpStream> = (0..20).map(|_| connect()).collect();
    for s in &mut slow {
        s.write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
    }
    // Unfinished heads of 6 KB (under the head size bound), then silence.
    let mut heads: Vec<TcpStream> = (0..20).map(|_| connect()).collect();
    let filler = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n", "a".repeat(6 * 1024));
    for s in &mut heads {
        s.write_all(filler.as_bytes()).unwrap();
    }
    // Connected and silent.
    let mut idle: Vec<TcpStream> = (0..20).map(|_| connect()).collect();
    // Heads over the bound are refused at once.
    let mut huge = connect();
    let _ = huge
        .write_all(format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n", "a".repeat(64 * 1024)).as_bytes());

    let started = Instant::now();
    let mut open = usize::MAX;
    while started.elapsed() < Duration::from_secs(8) {
        for s in &mut slow {
            let _ = s.write_all(b"X-Slow: 1\r\n");
        }
        open = slow
            .iter_mut()
            .chain(&mut heads)
            .chain(&mut idle)
            .chain(std::iter::once(&mut huge))
            .map(|s| !closed(s))
            .filter(|&o| o)
            .count();
        if open == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        open, 0,
        "every slow, unfinished or idle connection is closed"
    );
    // The API still answers.
    let (status, _) = master::http_get(d.http, "/v1/version");
    assert_eq!(status, 200);
}

/// Starts the daemon with its descriptor limit at `nofile` (soft and hard).
fn start_with_nofile(config: serde_json::Value, nofile: u64) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config;
    config["stateFile"] = fixture(CLUSTER).to_str().unwrap().into();
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let (port, http) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"));
    cmd.args([
        "--config",
        path.to_str().unwrap(),
        "--listener",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--http-port",
        &http.to_string(),
        "--no-forward",
        "--log-level",
        "error",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    // SAFETY: only an async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                nofile,
                nofile,
            )
            .map_err(std::io::Error::from)
        });
    }
    let d = Daemon {
        child: cmd.spawn().unwrap(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        http: SocketAddr::from(([127, 0, 0, 1], http)),
    };
    d.wait_answering("leader.mesos.");
    (d, dir)
}

fn open_descriptors(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.child.id()))
        .map(|r| r.count())
        .unwrap_or(0)
}

#[test]
fn many_idle_http_connections_leave_dns_over_tcp_answering() {
    // 256 descriptors: without a cap, 1,000 idle HTTP connections would take them all and DNS
    // over TCP could accept nothing.
    let (d, _dir) = start_with_nofile(json!({"httpHeaderTimeoutSeconds": 30}), 256);
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(d.http).ok())
        .collect();
    assert!(idle.len() > 500);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let m = d.tcp("leader.mesos.", RecordType::A);
        assert!(!m.answers.is_empty(), "DNS over TCP answers");
    }
    let m = d.udp("leader.mesos.", RecordType::A, None);
    assert!(!m.answers.is_empty());
    let fds = open_descriptors(&d);
    assert!(
        fds < 200,
        "{fds} descriptors open: HTTP connections are capped"
    );
    drop(idle);
    // Once they are gone, the API answers and counts what it turned away.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(d.http) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the API answers again");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(&d, "mesos_dns_sidecar_http_connections_rejected_total") >= 100.0);
}

/// GET with an optional bearer token; the status.
fn status(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_bearer_token_guards_state_endpoints_and_relays_send_it() {
    let master = FakeMaster::start(&cluster_json());
    let (relay, _r) = start_with_config(
        json!({"masters": [master.addr.to_string()], "stateFile": "", "externalon": false,
               "httpToken": "s3cret-token"}),
        &[],
    );
    for path in [
        "/v1/snapshot",
        "/v1/axfr",
        "/v1/enumerate",
        "/v1/config",
        "/metrics",
    ] {
        assert_eq!(status(relay.http, path, None), 401, "{path} without token");
        assert_eq!(
            status(relay.http, path, Some("wrong-token!")),
            401,
            "{path} wrong token"
        );
        assert_eq!(
            status(relay.http, path, Some("s3cret-token")),
            200,
            "{path} with token"
        );
    }
    for path in ["/v1/version", "/v1/hosts/leader.mesos", "/health", "/ready"] {
        assert_eq!(status(relay.http, path, None), 200, "{path} stays open");
    }
    // An agent with the token follows the relay; one without is refused and serves nothing.
    let (agent, _a) = start_with_config(
        json!({"relay": format!("http://{}", relay.http), "stateFile": "", "externalon": false,
               "httpToken": "s3cret-token"}),
        &[],
    );
    let m = agent.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
}
