//! HTTP load against DNS latency: cluster-name latency while clients re-read the large HTTP
//! documents.
//!
//! Run with `cargo bench --bench http_load`. Starts the real binary on a synthetic 10,000-task
//! cluster, then asks `leader.mesos` over UDP, one query at a time, for a few seconds: first
//! alone, then while six HTTP clients re-read `/v1/enumerate` and `/v1/axfr` as fast as they
//! can. Reports p50, p99 and maximum latency for both, and the documents served. Set
//! `SIDECAR_BIN` to measure another build of the daemon. Loopback only, about 15 seconds.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

const TASKS: usize = 10_000;
const RUN: Duration = Duration::from_secs(5);
const HTTP_CLIENTS: usize = 6;

/// Latencies of `leader.mesos` queries sent one at a time for `RUN`, in microseconds, sorted.
fn probe(addr: SocketAddr) -> Vec<u64> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let q = common::query("leader.mesos.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut out = Vec::new();
    let until = Instant::now() + RUN;
    while Instant::now() < until {
        let t = Instant::now();
        sock.send_to(&q, addr).unwrap();
        match sock.recv_from(&mut buf) {
            Ok(_) => out.push(t.elapsed().as_micros() as u64),
            Err(_) => out.push(2_000_000),
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    out.sort_unstable();
    out
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

/// GETs `path` until `stop`; counts documents and bytes.
fn reader(http: SocketAddr, path: &'static str, stop: Arc<AtomicBool>, docs: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(http) else {
            continue;
        };
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut body = Vec::new();
        if s.read_to_end(&mut body).is_ok() && body.len() > 1000 {
            docs.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("http_load: bench");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        mesos_dns_sidecar::mesos::synthetic::state_json(TASKS),
    )
    .unwrap();
    let cfg = dir.path().join("config.json");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "").unwrap();
    std::fs::write(
        &cfg,
        serde_json::json!({"stateFile": state, "resolvConf": resolv,
                           "savedResolvConf": dir.path().join("none"), "externalon": false})
        .to_string(),
    )
    .unwrap();
    let (port, http) = (common::free_port(), common::free_port());
    let bin = std::env::var("SIDECAR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mesos-dns-sidecar").to_string());
    let child = Command::new(&bin)
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--listener", "127.0.0.1", "--port", &port.to_string()])
        .args(["--http-port", &http.to_string(), "--log-level", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start daemon");
    let d = common::Daemon {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        http: SocketAddr::from(([127, 0, 0, 1], http)),
    };
    d.wait_answering("leader.mesos.");
    // Warm up: the first requests build the documents once.
    for path in ["/v1/enumerate", "/v1/axfr"] {
        common::master::http_get(d.http, path);
    }

    let quiet = probe(d.addr);
    let stop = Arc::new(AtomicBool::new(false));
    let docs = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..HTTP_CLIENTS)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/v1/enumerate"
            } else {
                "/v1/axfr"
            };
            let (stop, docs) = (stop.clone(), docs.clone());
            std::thread::spawn(move || reader(d.http, path, stop, docs))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let loaded = probe(d.addr);
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.join();
    }
    println!(
        "http_load: {TASKS} tasks, leader.mesos over UDP one at a time, {RUN:?} each; binary {bin}"
    );
    println!("| load | queries | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, l) in [
        ("none", &quiet),
        ("6 clients re-reading /v1/enumerate and /v1/axfr", &loaded),
    ] {
        println!(
            "| {label} | {} | {:.2} | {:.2} | {:.2} |",
            l.len(),
            pct(l, 0.5),
            pct(l, 0.99),
            *l.last().unwrap() as f64 / 1000.0
        );
    }
    println!(
        "documents served under load: {} ({:.0}/s)",
        docs.load(Ordering::Relaxed),
        docs.load(Ordering::Relaxed) as f64 / RUN.as_secs_f64()
    );
}
