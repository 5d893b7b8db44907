//! Upstreams that are slow for some names, or that send malformed answers: slow names still
//! get their answer, malformed ones get SERVFAIL and are never cached, and TTLs with the top
//! bit set are served as 0 (RFC 2181 section 8).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::upstream::FakeUpstream;
use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

fn daemon_for(upstream: SocketAddr, timeout: u64) -> (Daemon, tempfile::TempDir) {
    start_with_config(
        json!({"resolvers": [upstream.to_string()], "timeout": timeout}),
        &[],
    )
}

#[test]
fn names_an_upstream_answers_slowly_are_answered_after_fast_ones() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(up.addr, 5);
    // Fifty fast answers teach the daemon a sub-millisecond round trip.
    for i in 0..50 {
        let m = d.udp(&format!("fast{i}.example.com."), RecordType::A, None);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    {
        let mut slow = up.mode.name_delay_ms.lock().unwrap();
        slow.insert("txt.example.com.".into(), 1500);
        slow.insert("example.com.".into(), 1500);
        slow.insert("_sip._tcp.example.com.".into(), 600);
    }
    // Three slow names at once: each is answered, and none takes the upstream out of service.
    let slow = [
        ("txt.example.com.", RecordType::TXT),
        ("example.com.", RecordType::MX),
        ("_sip._tcp.example.com.", RecordType::SRV),
    ];
    let clients: Vec<_> = slow
        .iter()
        .map(|&(name, rtype)| {
            let addr = d.addr;
            std::thread::spawn(move || {
                let q = query(name, rtype, None);
                try_udp(addr, &q, Duration::from_secs(4)).map(|m| m.metadata.response_code)
            })
        })
        .collect();
    for (c, (name, _)) in clients.into_iter().zip(slow) {
        assert_eq!(
            c.join().unwrap(),
            Some(ResponseCode::NoError),
            "{name} answered NOERROR"
        );
    }
    // The upstream is still in service for the next name.
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), ["A 192.0.2.10"]);
}

/// Kinds of broken answers the raw upstream sends, by question name.
#[derive(Clone, Copy)]
enum Broken {
    /// The answer's owner name is a pointer to itself.
    OwnerLoop,
    /// A CNAME whose target is a label followed by a pointer back to that label.
    CnameLoop,
    /// An A record with TTL 0x80000005.
    TopBitTtl,
}

/// A UDP upstream answering each question with a hand-built packet; counts queries per name.
struct RawUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl RawUpstream {
    fn start(kinds: HashMap<&'static str, Broken>) -> RawUpstream {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counts = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let q = &buf[..n];
                let Some((name, name_end)) = question_name(q) else {
                    continue;
                };
                *counts.lock().unwrap().entry(name.clone()).or_default() += 1;
                let Some(&kind) = kinds.get(name.as_str()) else {
                    continue;
                };
                let _ = sock.send_to(&broken_answer(q, name_end, kind), peer);
            }
        });
        RawUpstream { addr, seen }
    }

    fn count(&self, name: &str) -> usize {
        self.seen.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

/// The question name as lowercase text with its final dot, and where it ends.
fn question_name(q: &[u8]) -> Option<(String, usize)> {
    let mut at = 12;
    let mut name = String::new();
    loop {
        let len = *q.get(at)? as usize;
        if len == 0 {
            return Some((name.to_ascii_lowercase(), at + 1));
        }
        name.push_str(std::str::from_utf8(q.get(at + 1..at + 1 + len)?).ok()?);
        name.push('.');
        at += 1 + len;
    }
}

fn broken_answer(q: &[u8], name_end: usize, kind: Broken) -> Vec<u8> {
    let mut out = q[..2].to_vec();
    out.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&q[12..name_end + 4]);
    let record_at = out.len() as u8;
    match kind {
        Broken::OwnerLoop => {
            out.extend_from_slice(&[0xc0, record_at]);
            out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 66]);
        }
        Broken::CnameLoop => {
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&[0, 5, 0, 1, 0, 0, 1, 44, 0, 4]);
            let rdata_at = out.len() as u8;
            out.extend_from_slice(&[1, b'x', 0xc0, rdata_at]);
        }
        Broken::TopBitTtl => {
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&[0, 1, 0, 1, 0x80, 0, 0, 5, 0, 4, 192, 0, 2, 77]);
        }
    }
    out
}

#[test]
fn pointer_loops_in_upstream_answers_give_servfail_and_are_not_cached() {
    let up = RawUpstream::start(HashMap::from([
        ("owner-loop.example.", Broken::OwnerLoop),
        ("cname-loop.example.", Broken::CnameLoop),
    ]));
    let (d, _dir) = daemon_for(up.addr, 2);
    for name in ["owner-loop.example.", "cname-loop.example."] {
        for round in 1..=2 {
            let m = d.udp(name, RecordType::A, None);
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{name}");
            assert!(m.answers.is_empty());
            assert!(
                up.count(name) >= round,
                "{name}: asked upstream again, not served from cache"
            );
        }
    }
    assert!(metric(&d, "mesos_dns_sidecar_upstream_bad_answers_total") >= 4.0);
}

#[test]
fn ttls_with_the_top_bit_set_are_served_as_zero() {
    let up = RawUpstream::start(HashMap::from([("topbit.example.", Broken::TopBitTtl)]));
    let (d, _dir) = daemon_for(up.addr, 2);
    let m = d.udp("topbit.example.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), ["A 192.0.2.77"]);
    assert_eq!(m.answers[0].ttl, 0, "RFC 2181 section 8: read as 0");
    // A zero TTL is not cached: the next query goes upstream again.
    let m = d.udp("topbit.example.", RecordType::A, None);
    assert_eq!(m.answers[0].ttl, 0);
    assert_eq!(up.count("topbit.example."), 2);
}
