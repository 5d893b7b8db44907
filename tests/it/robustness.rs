//! Hostile input and resource limits, bounded in count and time, loopback only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::master::{cluster_json, cluster_json_with_task};
use crate::common::upstream::black_hole;
use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn a_flood_of_malformed_packets_does_not_stop_real_answers() {
    let d = start(&["--state-file", fixture(CLUSTER).to_str().unwrap()]);
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let valid = query("nginx.marathon.mesos.", RecordType::A, None)
        .to_vec()
        .unwrap();
    for i in 0..20_000 {
        let len = (rng.next() % 600) as usize;
        let mut packet = rng.bytes(len);
        if i % 3 == 0 && packet.len() > 12 {
            // Plausible headers with garbage after them reach deeper into the parser.
            packet[..12].copy_from_slice(&valid[..12]);
        }
        if i % 5 == 0 {
            // Mutations of a valid query.
            packet = valid.clone();
            let at = (rng.next() as usize) % packet.len();
            packet[at] ^= (rng.next() as u8) | 1;
        }
        let _ = flood.send_to(&packet, d.addr);
        if i % 1000 == 0 {
            assert_eq!(
                answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
                ["A 10.44.3.3"]
            );
        }
    }
    // Garbage over TCP too.
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(d.addr) {
            let _ = s.write_all(&rng.bytes(64));
        }
    }
    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    assert_eq!(
        answers(&d.tcp("nginx.marathon.mesos.", RecordType::A)),
        ["A 10.44.3.3"]
    );
}

#[test]
fn idle_and_slow_tcp_clients_are_capped_and_timed_out() {
    let (d, _dir) = start_with_config(
        json!({"externalon": false, "tcpMaxConnections": 20, "tcpIdleTimeoutSeconds": 1}),
        &[],
    );
    // Twice the cap of idle connections, one of them slow-loris (half a length prefix).
    let mut idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(d.addr).unwrap())
        .collect();
    idle[0].write_all(&[0]).unwrap();
    // UDP is unaffected.
    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    // Connections over the cap are closed at once; the rest after the idle timeout.
    let started = Instant::now();
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed by the server");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Once they are gone, TCP serves again.
    assert_eq!(
        answers(&d.tcp("nginx.marathon.mesos.", RecordType::A)),
        ["A 10.44.3.3"]
    );
}

/// A master speaking raw HTTP/1.1, for faults a framework won't produce: a 500 MB body streamed
/// for as long as the client reads, and a body that stops halfway and never finishes.
struct RawMaster {
    addr: SocketAddr,
    behaviour: Arc<AtomicU8>,
    document: Arc<Mutex<Vec<u8>>>,
    /// Bytes of the huge body the client actually took.
    huge_sent: Arc<AtomicU64>,
}

const WHOLE: u8 = 0;
const HUGE: u8 = 1;
const HALF_THEN_HANG: u8 = 2;
const HUGE_BYTES: u64 = 500_000_000;

impl RawMaster {
    fn start() -> RawMaster {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let m = RawMaster {
            addr: listener.local_addr().unwrap(),
            behaviour: Arc::new(AtomicU8::new(WHOLE)),
            document: Arc::new(Mutex::new(Vec::new())),
            huge_sent: Arc::new(AtomicU64::new(0)),
        };
        m.set_document(&cluster_json());
        let (behaviour, document, huge_sent) =
            (m.behaviour.clone(), m.document.clone(), m.huge_sent.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (behaviour, document, huge_sent) =
                    (behaviour.clone(), document.clone(), huge_sent.clone());
                std::thread::spawn(move || {
                    serve_raw(
                        conn,
                        behaviour.load(Ordering::SeqCst),
                        &document,
                        &huge_sent,
                    )
                });
            }
        });
        m
    }

    fn set_document(&self, doc: &serde_json::Value) {
        let mut doc = doc.clone();
        doc["leader"] = format!("master@{}", self.addr).into();
        *self.document.lock().unwrap() = serde_json::to_vec(&doc).unwrap();
    }

    fn set(&self, behaviour: u8) {
        self.behaviour.store(behaviour, Ordering::SeqCst);
    }
}

fn serve_raw(mut conn: TcpStream, behaviour: u8, document: &Mutex<Vec<u8>>, huge_sent: &AtomicU64) {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return,
        }
    }
    if !request.starts_with(b"GET /master/state") {
        // No event stream here: the daemon polls.
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let doc = document.lock().unwrap().clone();
    let head = |len: u64| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\
             Connection: close\r\n\r\n"
        )
    };
    match behaviour {
        WHOLE => {
            let _ = conn.write_all(head(doc.len() as u64).as_bytes());
            let _ = conn.write_all(&doc);
        }
        HUGE => {
            let _ = conn.write_all(head(HUGE_BYTES).as_bytes());
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < HUGE_BYTES && conn.write_all(&chunk).is_ok() {
                sent += chunk.len() as u64;
                huge_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        _ => {
            let _ = conn.write_all(head(doc.len() as u64).as_bytes());
            let _ = conn.write_all(&doc[..doc.len() / 2]);
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

#[test]
fn a_500_mb_or_stalled_master_answer_keeps_memory_bounded_and_the_snapshot() {
    const ERRORS: &str = "mesos_dns_sidecar_state_load_errors_total";
    let master = RawMaster::start();
    let (d, _dir) = start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 1, "stateFile": "",
               "stateTimeoutSeconds": 1, "externalon": false, "maxStateBytes": 1_000_000}),
        &[],
    );
    d.wait_answering("nginx.marathon.mesos.");

    // 500 MB: the daemon stops reading at 1 MB and hangs up.
    let errors = metric(&d, ERRORS);
    master.set(HUGE);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    assert!(
        metric(&d, ERRORS) > errors,
        "the oversized answer is counted"
    );
    let taken = master.huge_sent.load(Ordering::Relaxed);
    assert!(
        taken < 50_000_000,
        "the daemon took {taken} bytes of the body"
    );
    let rss = peak_rss_kib(&d);
    assert!(rss < 40_000, "peak RSS {rss} KiB: the body was buffered");

    // Half a document, then silence: the fetch times out, the snapshot stays.
    let errors = metric(&d, ERRORS);
    master.set(HALF_THEN_HANG);
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    assert!(metric(&d, ERRORS) > errors, "the stalled fetch is counted");

    master.set_document(&cluster_json_with_task("recovered"));
    master.set(WHOLE);
    d.wait_for("recovered.marathon.mesos.", RecordType::A, |m| {
        !m.answers.is_empty()
    });
}

#[test]
fn an_upstream_that_never_answers_costs_a_bounded_wait_and_nothing_else() {
    let (dead, _udp, _tcp) = black_hole();
    let (d, _dir) = start_with_config(json!({"resolvers": [dead.to_string()], "timeout": 1}), &[]);
    // A burst of distinct names, all bound for the dead upstream, sent without waiting.
    let burst = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..2000 {
        let q = query(&format!("n{i}.never.example."), RecordType::A, None);
        burst.send_to(&q.to_vec().unwrap(), d.addr).unwrap();
    }
    // Cluster names keep being answered at once meanwhile.
    let started = Instant::now();
    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // A forwarded name gets SERVFAIL within the configured timeout, not a client timeout.
    let started = Instant::now();
    let m = d.udp("www.never.example.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    // The burst got SERVFAILs too, and left nothing behind.
    burst
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 512];
    let mut servfails = 0;
    while let Ok((n, _)) = burst.recv_from(&mut buf) {
        if n >= 4 && buf[3] & 0x0f == 2 {
            servfails += 1;
        }
    }
    assert!(servfails > 0, "no SERVFAIL for the burst");
    let rss = peak_rss_kib(&d);
    assert!(rss < 60_000, "peak RSS {rss} KiB");
}
