//! An in-process upstream DNS server for forwarding tests: authoritative for `example.com`
//! with one name per interesting case, and switchable into slow, dead or failing modes.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, NULL, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Behaviour switches.
#[derive(Default)]
pub struct Mode {
    /// Don't answer at all.
    pub dead: AtomicBool,
    /// Answer everything SERVFAIL.
    pub servfail: AtomicBool,
    /// Delay every answer by this many milliseconds.
    pub delay_ms: AtomicU64,
    /// Delay answers for these names (lowercase, trailing dot) by this many milliseconds.
    pub name_delay_ms: Mutex<HashMap<String, u64>>,
}

/// A running fake upstream.
pub struct FakeUpstream {
    /// Its address (UDP and TCP).
    pub addr: SocketAddr,
    /// Behaviour switches.
    pub mode: Arc<Mode>,
    /// Queries received per lowercase name.
    pub seen: Arc<Mutex<HashMap<String, usize>>>,
    /// Queries received over TCP.
    pub tcp_queries: Arc<AtomicUsize>,
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn soa(min: u32) -> Record {
    Record::from_rdata(
        n("example.com."),
        30,
        RData::SOA(SOA::new(
            n("ns1.example.com."),
            n("admin.example.com."),
            7,
            3600,
            600,
            86400,
            min,
        )),
    )
}

/// The zone's answer to one question: (rcode, answers, authorities, additionals, AD flag).
fn answer(q: &Message) -> (ResponseCode, Vec<Record>, Vec<Record>, Vec<Record>, bool) {
    let query = &q.queries[0];
    let name = query.name().to_lowercase().to_ascii();
    let qt = query.query_type();
    let dnssec_ok = q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let qn = query.name().clone();
    let rec = |d: RData| Record::from_rdata(qn.clone(), 300, d);
    let ns = || {
        vec![Record::from_rdata(
            n("example.com."),
            3600,
            RData::NS(NS(n("ns1.example.com."))),
        )]
    };
    let glue = || {
        vec![Record::from_rdata(
            n("ns1.example.com."),
            3600,
            RData::A(A::new(192, 0, 2, 53)),
        )]
    };
    match (name.as_str(), qt) {
        ("www.example.com.", RecordType::A) => (
            ResponseCode::NoError,
            vec![rec(RData::A(A::new(192, 0, 2, 10)))],
            ns(),
            glue(),
            false,
        ),
        ("www.example.com.", RecordType::AAAA) => (
            ResponseCode::NoError,
            vec![rec(RData::AAAA(AAAA("2001:db8::10".parse().unwrap())))],
            ns(),
            glue(),
            false,
        ),
        ("www.example.com.", _) => (ResponseCode::NoError, vec![], vec![soa(2)], vec![], false),
        // A Mesos master named by hostname, for the daemon's own lookups.
        ("master.example.com.", RecordType::A) => (
            ResponseCode::NoError,
            vec![rec(RData::A(A::new(127, 0, 0, 1)))],
            vec![],
            vec![],
            false,
        ),
        ("master.example.com.", _) => (ResponseCode::NoError, vec![], vec![soa(2)], vec![], false),
        ("short.example.com.", RecordType::A) => (
            ResponseCode::NoError,
            vec![Record::from_rdata(
                qn.clone(),
                1,
                RData::A(A::new(192, 0, 2, 11)),
            )],
            vec![],
            vec![],
            false,
        ),
        // A 5-second answer, for prefetching.
        ("five.example.com.", RecordType::A) => (
            ResponseCode::NoError,
            vec![Record::from_rdata(
                qn.clone(),
                5,
                RData::A(A::new(192, 0, 2, 15)),
            )],
            vec![],
            vec![],
            false,
        ),
        ("alias.example.com.", RecordType::A) => (
            ResponseCode::NoError,
            vec![
                Record::from_rdata(
                    qn.clone(),
                    300,
                    RData::CNAME(CNAME(n("alias2.example.com."))),
                ),
                Record::from_rdata(
                    n("alias2.example.com."),
                    300,
                    RData::CNAME(CNAME(n("www.example.com."))),
                ),
                Record::from_rdata(n("www.example.com."), 300, RData::A(A::new(192, 0, 2, 10))),
            ],
            vec![],
            vec![],
            false,
        ),
        ("example.com.", RecordType::MX) => (
            ResponseCode::NoError,
            vec![rec(RData::MX(MX::new(10, n("mail.example.com."))))],
            vec![],
            vec![],
            false,
        ),
        ("example.com.", RecordType::NS) => (ResponseCode::NoError, ns(), vec![], glue(), false),
        ("example.com.", RecordType::SOA) => {
            (ResponseCode::NoError, vec![soa(2)], vec![], vec![], false)
        }
        ("txt.example.com.", RecordType::TXT) => (
            ResponseCode::NoError,
            vec![rec(RData::TXT(TXT::new(vec!["v=spf1 -all".into()])))],
            vec![],
            vec![],
            false,
        ),
        ("_sip._tcp.example.com.", RecordType::SRV) => (
            ResponseCode::NoError,
            vec![rec(RData::SRV(SRV::new(1, 2, 5060, n("www.example.com."))))],
            vec![],
            vec![],
            false,
        ),
        ("10.2.0.192.in-addr.arpa.", RecordType::PTR) => (
            ResponseCode::NoError,
            vec![rec(RData::PTR(PTR(n("www.example.com."))))],
            vec![],
            vec![],
            false,
        ),
        ("big.example.com.", RecordType::TXT) => {
            let txt: Vec<Record> = (0..40)
                .map(|i| {
                    rec(RData::TXT(TXT::new(vec![format!(
                        "{i:02}-{}",
                        "x".repeat(60)
                    )])))
                })
                .collect();
            (ResponseCode::NoError, txt, vec![], vec![], false)
        }
        ("signed.example.com.", RecordType::A) => {
            let mut answers = vec![rec(RData::A(A::new(192, 0, 2, 12)))];
            if dnssec_ok {
                // An RRSIG-typed record with opaque data: it must pass through untouched.
                answers.push(rec(RData::Unknown {
                    code: RecordType::RRSIG,
                    rdata: NULL::with(vec![0, 1, 8, 3, 0, 0, 1, 44, 1, 2, 3, 4, 5, 6, 7, 8, 0, 42]),
                }));
            }
            (ResponseCode::NoError, answers, vec![], vec![], dnssec_ok)
        }
        (name, _) if name.ends_with("example.com.") => {
            (ResponseCode::NXDomain, vec![], vec![soa(2)], vec![], false)
        }
        _ => (ResponseCode::Refused, vec![], vec![], vec![], false),
    }
}

fn respond(
    mode: &Mode,
    seen: &Mutex<HashMap<String, usize>>,
    packet: &[u8],
    max: usize,
) -> Option<Vec<u8>> {
    let q = Message::from_vec(packet).ok()?;
    let name = q.queries.first()?.name().to_lowercase().to_ascii();
    *seen.lock().unwrap().entry(name).or_default() += 1;
    if mode.dead.load(Ordering::Relaxed) {
        return None;
    }
    let delay = mode.delay_ms.load(Ordering::Relaxed)
        + mode
            .name_delay_ms
            .lock()
            .unwrap()
            .get(&q.queries[0].name().to_lowercase().to_ascii())
            .copied()
            .unwrap_or(0);
    if delay > 0 {
        std::thread::sleep(Duration::from_millis(delay));
    }
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.message_type = MessageType::Response;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.metadata.checking_disabled = q.metadata.checking_disabled;
    r.add_queries(q.queries.iter().cloned());
    if mode.servfail.load(Ordering::Relaxed) {
        r.metadata.response_code = ResponseCode::ServFail;
    } else {
        let (rcode, an, ns, ar, ad) = answer(&q);
        r.metadata.response_code = rcode;
        r.metadata.authentic_data = ad;
        r.insert_answers(an);
        r.insert_authorities(ns);
        r.insert_additionals(ar);
    }
    if let Some(e) = &q.edns {
        let mut out = hickory_proto::op::Edns::new();
        out.set_max_payload(1232);
        out.set_dnssec_ok(e.flags().dnssec_ok);
        r.set_edns(out);
    }
    let bytes = r.to_vec().ok()?;
    if bytes.len() > max {
        return r.truncate().to_vec().ok();
    }
    Some(bytes)
}

impl FakeUpstream {
    /// Starts the server on 127.0.0.1 with a free port.
    pub fn start() -> FakeUpstream {
        // The kernel picks a free UDP port; its TCP twin may be taken (by any socket on the
        // host), so try again until both are ours.
        loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr) {
                return Self::serve(udp, tcp);
            }
        }
    }

    /// Starts the server on `addr` (port 53 for upstreams named in a resolv.conf).
    pub fn start_on(addr: SocketAddr) -> FakeUpstream {
        let udp = UdpSocket::bind(addr).unwrap();
        let tcp = TcpListener::bind(udp.local_addr().unwrap()).unwrap();
        Self::serve(udp, tcp)
    }

    fn serve(udp: UdpSocket, tcp: TcpListener) -> FakeUpstream {
        let addr = udp.local_addr().unwrap();
        let mode = Arc::new(Mode::default());
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        {
            let (mode, seen) = (mode.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok((len, peer)) = udp.recv_from(&mut buf) {
                    let packet = buf[..len].to_vec();
                    let max = Message::from_vec(&packet)
                        .ok()
                        .and_then(|m| m.edns.map(|e| e.max_payload() as usize))
                        .unwrap_or(512)
                        .max(512);
                    let (mode, seen, sock) = (mode.clone(), seen.clone(), udp.try_clone().unwrap());
                    std::thread::spawn(move || {
                        if let Some(resp) = respond(&mode, &seen, &packet, max) {
                            let _ = sock.send_to(&resp, peer);
                        }
                    });
                }
            });
        }
        {
            let (mode, seen, count) = (mode.clone(), seen.clone(), tcp_queries.clone());
            std::thread::spawn(move || {
                for stream in tcp.incoming() {
                    let Ok(mut s) = stream else { continue };
                    let (mode, seen, count) = (mode.clone(), seen.clone(), count.clone());
                    std::thread::spawn(move || {
                        let mut len = [0u8; 2];
                        while s.read_exact(&mut len).is_ok() {
                            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                            if s.read_exact(&mut buf).is_err() {
                                return;
                            }
                            count.fetch_add(1, Ordering::Relaxed);
                            if let Some(resp) = respond(&mode, &seen, &buf, 65535) {
                                let mut out = (resp.len() as u16).to_be_bytes().to_vec();
                                out.extend_from_slice(&resp);
                                let _ = s.write_all(&out);
                            }
                        }
                    });
                }
            });
        }
        FakeUpstream {
            addr,
            mode,
            seen,
            tcp_queries,
        }
    }

    /// How many queries for `name` (lowercase, trailing dot) arrived.
    pub fn count(&self, name: &str) -> usize {
        self.seen.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

/// A UDP+TCP address where nothing ever answers (a bound socket that never reads).
pub fn black_hole() -> (SocketAddr, UdpSocket, TcpListener) {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr) {
            return (addr, udp, tcp);
        }
    }
}

/// The loopback address 127.0.0.`last`, for tests that need a second local address.
pub fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}
