//! Hostile input and resource limits, bounded in count and time, loopback only.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::master::{fake_json, FakeMaster, Mode};
use common::*;
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
    let d = start(&["--state-file", fixture("fake.json").to_str().unwrap()]);
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
                ["A 10.3.0.3"]
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
        ["A 10.3.0.3"]
    );
    assert_eq!(
        answers(&d.tcp("nginx.marathon.mesos.", RecordType::A)),
        ["A 10.3.0.3"]
    );
}

#[test]
fn idle_and_slow_tcp_clients_are_capped_and_timed_out() {
    let (d, _dir) = start_with_config(
        json!({"recurseon": false, "tcpMaxConnections": 20, "tcpIdleTimeoutSeconds": 1}),
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
        ["A 10.3.0.3"]
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
        ["A 10.3.0.3"]
    );
}

#[test]
fn an_oversized_master_answer_is_rejected_and_the_snapshot_kept() {
    let master = FakeMaster::start(&fake_json());
    let (d, _dir) = start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 1, "stateFile": "",
               "recurseon": false, "maxStateBytes": 1_000_000}),
        &[],
    );
    d.wait_answering("nginx.marathon.mesos.");
    // 50 MB: the daemon stops reading at 1 MB.
    master.set_mode(Mode::Huge(50_000_000));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.3.0.3"]
    );
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", d.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        rss_kib < 40_000,
        "peak RSS {rss_kib} KiB: the body was buffered"
    );
}
