//! Relay fan-out: 1,000 simulated agent daemons following one relay, versus the same agents
//! each polling the master directly. Loopback only, bounded in time.
//!
//! Run with `cargo bench --bench relay_fanout`. A fake master serves a synthetic 10,000-task
//! state and changes it every 5 seconds; the relay is the real binary. Reported: the master's
//! request and byte rates in both setups, and the relay's CPU and bytes per second.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use mesos_dns_sidecar::mesos::synthetic;

const AGENTS: usize = 1000;
const RUN: Duration = Duration::from_secs(20);
const CHANGE_EVERY: Duration = Duration::from_secs(5);
const AGENT_REFRESH: Duration = Duration::from_secs(60);

#[derive(Clone, Default)]
struct Master {
    doc: Arc<Mutex<Vec<u8>>>,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

async fn state(State(m): State<Master>) -> Vec<u8> {
    let body = m.doc.lock().unwrap().clone();
    m.requests.fetch_add(1, Ordering::Relaxed);
    m.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    body
}

fn document(addr: SocketAddr, generation: usize) -> Vec<u8> {
    let mut v = synthetic::state_value(10_000);
    v["leader"] = format!("master@{addr}").into();
    // A changing task name per generation, so each change is a real update.
    v["frameworks"][0]["tasks"][0]["name"] = format!("gen-{generation}").into();
    serde_json::to_vec(&v).unwrap()
}

async fn start_master() -> (SocketAddr, Master) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let m = Master::default();
    *m.doc.lock().unwrap() = document(addr, 0);
    let app = Router::new()
        .route("/master/state", get(state))
        .with_state(m.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let changer = m.clone();
    tokio::spawn(async move {
        for generation in 1.. {
            tokio::time::sleep(CHANGE_EVERY).await;
            *changer.doc.lock().unwrap() = document(addr, generation);
        }
    });
    (addr, m)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// One simulated agent: the relay client protocol (long-poll with ETag, gzip).
async fn agent(client: reqwest::Client, url: String, bytes: Arc<AtomicU64>, until: Instant) {
    let mut etag: Option<String> = None;
    while Instant::now() < until {
        let mut req = client.get(&url).header("Accept-Encoding", "gzip");
        if let Some(e) = &etag {
            req = req.header("If-None-Match", e);
        }
        let left = until.saturating_duration_since(Instant::now());
        let Ok(Ok(resp)) = tokio::time::timeout(left, req.send()).await else {
            return;
        };
        if let Some(e) = resp.headers().get("etag").and_then(|v| v.to_str().ok()) {
            etag = Some(e.to_string());
        }
        if let Ok(body) = resp.bytes().await {
            bytes.fetch_add(body.len() as u64 + 200, Ordering::Relaxed);
        }
    }
}

/// One agent polling the master directly, as a daemon with `refreshSeconds: 60` would.
async fn direct_agent(client: reqwest::Client, url: String, offset: Duration, until: Instant) {
    tokio::time::sleep(offset).await;
    while Instant::now() < until {
        if let Ok(resp) = client.get(&url).send().await {
            let _ = resp.bytes().await;
        }
        tokio::time::sleep(AGENT_REFRESH).await;
    }
}

#[tokio::main]
async fn main() {
    let (master_addr, master) = start_master().await;
    let doc_len = master.doc.lock().unwrap().len();
    let port = free_port();
    let http_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("relay.json");
    std::fs::write(
        &cfg,
        serde_json::to_vec(&serde_json::json!({"masters": [master_addr.to_string()],
            "refreshSeconds": 1, "externalon": false, "resolvConf": "/dev/null"}))
        .unwrap(),
    )
    .unwrap();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
        .args(["--config", cfg.to_str().unwrap(), "--listener", "127.0.0.1"])
        .args([
            "--port",
            &port.to_string(),
            "--http-port",
            &http_port.to_string(),
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("start the relay");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Relay tier: 1,000 agents long-polling the relay.
    // Bytes are counted as they travel: gzip kept compressed.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(AGENTS)
        .timeout(Duration::from_secs(40))
        .no_gzip()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{http_port}/v1/snapshot?wait=30");
    let bytes = Arc::new(AtomicU64::new(0));
    let m0 = master.requests.load(Ordering::Relaxed);
    let mb0 = master.bytes.load(Ordering::Relaxed);
    let cpu0 = cpu_seconds(relay.id());
    let started = Instant::now();
    let until = started + RUN;
    let agents: Vec<_> = (0..AGENTS)
        .map(|_| tokio::spawn(agent(client.clone(), url.clone(), bytes.clone(), until)))
        .collect();
    for a in agents {
        let _ = a.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let relay_cpu = (cpu_seconds(relay.id()) - cpu0) / secs * 100.0;
    let relay_master_rps = (master.requests.load(Ordering::Relaxed) - m0) as f64 / secs;
    let relay_master_bps = (master.bytes.load(Ordering::Relaxed) - mb0) as f64 / secs;
    let relay_bps = bytes.load(Ordering::Relaxed) as f64 / secs;
    let _ = relay.kill();
    let _ = relay.wait();

    // Direct: every agent polls the master every 60 s (offsets spread over the interval).
    let m0 = master.requests.load(Ordering::Relaxed);
    let mb0 = master.bytes.load(Ordering::Relaxed);
    let started = Instant::now();
    let until = started + RUN;
    let direct_url = format!("http://{master_addr}/master/state");
    let direct: Vec<_> = (0..AGENTS)
        .map(|i| {
            let offset = AGENT_REFRESH.mul_f64(i as f64 / AGENTS as f64);
            tokio::spawn(direct_agent(
                client.clone(),
                direct_url.clone(),
                offset,
                until,
            ))
        })
        .collect();
    tokio::time::sleep(RUN).await;
    for d in direct {
        d.abort();
    }
    let secs = started.elapsed().as_secs_f64();
    let direct_rps = (master.requests.load(Ordering::Relaxed) - m0) as f64 / secs;
    let direct_bps = (master.bytes.load(Ordering::Relaxed) - mb0) as f64 / secs;

    println!(
        "relay fan-out: {AGENTS} agents, 10,000-task state ({:.1} MiB), change every {}s, {}s runs",
        doc_len as f64 / 1048576.0,
        CHANGE_EVERY.as_secs(),
        RUN.as_secs()
    );
    println!(
        "{:<34} {:>14} {:>16}",
        "setup", "master req/s", "master MiB/s"
    );
    println!(
        "{:<34} {:>14.2} {:>16.2}",
        "agents -> relay -> master",
        relay_master_rps,
        relay_master_bps / 1048576.0
    );
    println!(
        "{:<34} {:>14.2} {:>16.2}",
        "agents -> master (every 60 s)",
        direct_rps,
        direct_bps / 1048576.0
    );
    println!(
        "relay: {relay_cpu:.1}% of one core, {:.2} MiB/s to agents (gzip, 304s for unchanged)",
        relay_bps / 1048576.0
    );
    println!(
        "master load ratio direct/relay: {:.0}x requests, {:.0}x bytes",
        direct_rps / relay_master_rps.max(1e-9),
        direct_bps / relay_master_bps.max(1e-9)
    );
}
