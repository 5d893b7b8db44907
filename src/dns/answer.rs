//! Turns one DNS request into one response: the authoritative logic for the cluster domain.
//!
//! Pure with respect to I/O: bytes in, bytes out, so both transports share it and tests can
//! drive it directly. Answers follow RFC 1034/2308 where Mesos-DNS is loose (NODATA with the SOA
//! for an existing name of another type, NXDOMAIN only when nothing exists at or below a name),
//! with Mesos-DNS's record values.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use rand::seq::SliceRandom;

use super::fast;
use super::wire::{self, Question};
use crate::metrics::Metrics;
use crate::records::snapshot::{Entry, Snapshot};

/// The transport a request came over, which bounds the response size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the client's EDNS payload size up to our own limit.
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this response.
    Reply(Vec<u8>),
    /// Send nothing (not a query, or no header).
    Drop,
    /// The name is outside the cluster domain: forward it, answering in at most `max_size`
    /// bytes.
    Forward {
        /// The question, located in the raw packet.
        question: Question,
        /// Response size limit for the client's transport.
        max_size: usize,
    },
}

/// UDP payload size we advertise and accept at most (the DNS flag day 2020 value, which avoids
/// IP fragmentation on ordinary paths).
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;

/// The EDNS option code of an Extended DNS Error (RFC 8914 section 2).
const EDNS_EDE: u16 = 15;
/// The Extended DNS Error INFO-CODE "Stale Answer" (RFC 8914 section 4.4).
const EDE_STALE_ANSWER: u16 = 3;

/// How old the served cluster state is (`None` when nothing is served); shared with whatever
/// publishes the snapshots, so the responder can tell a stale answer without knowing the source.
pub type StateAge = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// When answers count as stale, and how to tell the state's age.
struct Staleness {
    after: Duration,
    age: StateAge,
}

/// Answers requests from the current snapshot.
pub struct Responder {
    snapshot: Arc<ArcSwapOption<Snapshot>>,
    metrics: Arc<Metrics>,
    domain: Name,
    /// The domain as lowercase wire-style text with trailing dot, for the raw fast path.
    domain_text: Vec<u8>,
    recursion_available: bool,
    forwarding: bool,
    max_udp_payload: u16,
    /// `staleAfterSeconds`: `None` never signals staleness.
    staleness: Option<Staleness>,
    /// `maxUdpAnswers`: 0 never caps.
    max_udp_answers: usize,
    /// `SetTruncateBit`: false cuts cluster answers to fit without TC, as Mesos-DNS does.
    truncate_bit: bool,
}

impl Responder {
    /// A responder for `domain` (lowercase, no trailing dot) reading `snapshot`. With
    /// `forwarding`, other names are handed to the forwarder; without, they are refused.
    pub fn new(
        domain: &str,
        snapshot: Arc<ArcSwapOption<Snapshot>>,
        metrics: Arc<Metrics>,
        recursion_available: bool,
        forwarding: bool,
    ) -> Result<Responder, hickory_proto::ProtoError> {
        Ok(Responder {
            snapshot,
            metrics,
            domain: Name::from_ascii(format!("{domain}."))?,
            domain_text: format!("{domain}.").into_bytes(),
            recursion_available,
            forwarding,
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
            staleness: None,
            max_udp_answers: 0,
            truncate_bit: true,
        })
    }

    /// Marks answers for cluster names with the Extended DNS Error "Stale Answer" (RFC 8914,
    /// to clients that sent EDNS) while `age` reports the served state older than `after`,
    /// so clients and operators can tell an answer from a state the masters no longer confirm.
    /// A zero `after` turns the signal off.
    pub fn with_stale_after(mut self, after: Duration, age: StateAge) -> Responder {
        self.staleness = (!after.is_zero()).then_some(Staleness { after, age });
        self
    }

    /// Caps A and AAAA answer sets sent over UDP at `max` records, a random subset each time
    /// (names like `slave.mesos` on big clusters otherwise truncate and force TCP retries); TCP
    /// still gets the whole set. Zero turns the cap off.
    pub fn with_max_udp_answers(mut self, max: usize) -> Responder {
        self.max_udp_answers = max;
        self
    }

    /// With `set` false (Mesos-DNS's `SetTruncateBit: false`), a cluster answer too large for
    /// the client's transport is cut to the records that fit (a random subset: answers are
    /// shuffled) and sent without TC, as Mesos-DNS sends it; true sets TC, the standard way.
    pub fn with_truncate_bit(mut self, set: bool) -> Responder {
        self.truncate_bit = set;
        self
    }

    /// The served state's age when it is older than `staleAfterSeconds`.
    fn stale_age(&self) -> Option<Duration> {
        let s = self.staleness.as_ref()?;
        (s.age)().filter(|age| *age > s.after)
    }

    /// Whether answers to `qtype` over `transport` are capped by `maxUdpAnswers`.
    fn caps(&self, transport: Transport, qtype: RecordType) -> bool {
        self.max_udp_answers > 0
            && transport == Transport::Udp
            && matches!(qtype, RecordType::A | RecordType::AAAA)
    }

    /// Decides what to do with one request packet: answer it (cluster names and errors),
    /// drop it, or forward it.
    pub fn handle(&self, packet: &[u8], transport: Transport) -> Outcome {
        if let Some(outcome) = self.fast_path(packet, transport) {
            return outcome;
        }
        self.handle_parsed(packet, transport)
    }

    /// Handles a plain query from its raw bytes, without parsing it into a `Message`: names
    /// outside the domain are handed to the forwarder as they are (the upstream sees them
    /// whole anyway), and the common cluster answers are written by `fast`. `None` sends the
    /// request down the general path.
    fn fast_path(&self, packet: &[u8], transport: Transport) -> Option<Outcome> {
        // QR=0 and OPCODE=QUERY; one question, nothing in answer/authority.
        if packet.len() < wire::HEADER || packet[2] & 0xf8 != 0 || packet[6..10] != [0, 0, 0, 0] {
            return None;
        }
        let question = wire::question(packet).ok()?;
        let edns = wire::edns(packet).ok()?;
        if edns.present && packet.get(edns.rdlen_at - 3).is_some_and(|v| *v > 0) {
            // EDNS version > 0: the general path answers BADVERS.
            return None;
        }
        let max_size = match transport {
            Transport::Tcp => u16::MAX as usize,
            Transport::Udp if edns.present => {
                edns.payload.clamp(512, self.max_udp_payload) as usize
            }
            Transport::Udp => 512,
        };
        if !wire::in_zone(&question.name_lower, &self.domain_text) {
            if !self.forwarding || self.answers_outside_zone(&question) {
                return None;
            }
            self.metrics.count_qtype(question.qtype);
            return Some(Outcome::Forward { question, max_size });
        }
        // Only an OPT record may follow the question, and only plain hostname labels (which
        // makes the lowercase text an exact image of the wire name).
        if packet[10..12] != [0, u8::from(edns.present)] || !plain_labels(packet, &question) {
            return None;
        }
        let snapshot = self.snapshot.load();
        // Stale answers carry an EDE and capped answer sets are cut: both on the general path.
        if self.stale_age().is_some() {
            return None;
        }
        let qtype = RecordType::from(question.qtype);
        if self.caps(transport, qtype) {
            let key = std::str::from_utf8(&question.name_lower).ok()?;
            let entry = snapshot.as_deref()?.lookup(key);
            let size = entry.map_or(0, |e| match qtype {
                RecordType::A => e.a.len(),
                _ => e.aaaa.len(),
            });
            if size > self.max_udp_answers {
                return None;
            }
        }
        let req = fast::Request {
            edns: edns.present,
            dnssec_ok: edns.dnssec_ok,
            max_size,
            our_payload: self.max_udp_payload,
            recursion_available: self.recursion_available,
        };
        let (resp, rcode) = fast::answer(
            packet,
            &question,
            self.domain_text.len(),
            snapshot.as_deref()?,
            req,
        )?;
        if !self.truncate_bit && wire::truncated(&resp) {
            // Cut without TC on the general path.
            return None;
        }
        self.metrics.count_qtype(question.qtype);
        self.metrics.count_rcode(rcode.into());
        if wire::truncated(&resp) {
            Metrics::inc(&self.metrics.truncated_responses);
        }
        Some(Outcome::Reply(resp))
    }

    /// Whether a question outside the cluster domain is answered from the snapshot (reverse
    /// lookups, static records) instead of forwarded: the router's one hook for such names.
    fn answers_outside_zone(&self, question: &Question) -> bool {
        let Ok(key) = std::str::from_utf8(&question.name_lower) else {
            return false;
        };
        let qtype = RecordType::from(question.qtype);
        self.snapshot
            .load()
            .as_deref()
            .is_some_and(|s| s.answers_outside_zone(key, qtype))
    }

    fn handle_parsed(&self, packet: &[u8], transport: Transport) -> Outcome {
        let request = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) => {
                Metrics::inc(&self.metrics.malformed_packets);
                return match formerr_from_header(packet) {
                    Some(resp) => {
                        self.metrics.count_rcode(ResponseCode::FormErr.into());
                        Outcome::Reply(resp)
                    }
                    None => Outcome::Drop,
                };
            }
        };
        if request.metadata.message_type != MessageType::Query {
            Metrics::inc(&self.metrics.malformed_packets);
            return Outcome::Drop;
        }

        let mut resp = Message::response(request.metadata.id, request.metadata.op_code);
        resp.metadata.recursion_desired = request.metadata.recursion_desired;
        resp.metadata.checking_disabled = request.metadata.checking_disabled;
        resp.add_queries(request.queries.iter().cloned());

        let max_size = match (transport, &request.edns) {
            (Transport::Tcp, _) => u16::MAX as usize,
            (Transport::Udp, Some(e)) => e.max_payload().clamp(512, self.max_udp_payload) as usize,
            (Transport::Udp, None) => 512,
        };
        if let Some(req_edns) = &request.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(self.max_udp_payload);
            edns.set_version(0);
            edns.set_dnssec_ok(req_edns.flags().dnssec_ok);
            resp.set_edns(edns);
            if req_edns.version() > 0 {
                return Outcome::Reply(self.finish(resp, ResponseCode::BADVERS, max_size));
            }
        }
        if request.metadata.op_code != OpCode::Query {
            return Outcome::Reply(self.finish(resp, ResponseCode::NotImp, max_size));
        }
        if request.queries.len() != 1 {
            return Outcome::Reply(self.finish(resp, ResponseCode::FormErr, max_size));
        }
        let query = &request.queries[0];
        let qname = query.name();
        self.metrics.count_qtype(query.query_type().into());
        if !self.domain.zone_of(qname) {
            let key = qname.to_lowercase().to_ascii();
            let local = self
                .snapshot
                .load_full()
                .filter(|s| s.answers_outside_zone(&key, query.query_type()));
            if let Some(snapshot) = local.filter(|_| query.query_class() == DNSClass::IN) {
                resp.metadata.authoritative = true;
                resp.metadata.recursion_available = self.recursion_available;
                answer_outside(&snapshot, qname, &key, query.query_type(), &mut resp);
                return Outcome::Reply(self.finish(resp, ResponseCode::NoError, max_size));
            }
            if self.forwarding {
                if let Ok(question) = wire::question(packet) {
                    return Outcome::Forward { question, max_size };
                }
            }
            return Outcome::Reply(self.finish(resp, ResponseCode::Refused, max_size));
        }
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return Outcome::Reply(self.finish(resp, ResponseCode::Refused, max_size));
        }
        if matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR) {
            // No zone transfers over DNS (Mesos-DNS offers the zone as /v1/axfr instead).
            return Outcome::Reply(self.finish(resp, ResponseCode::Refused, max_size));
        }
        let Some(snapshot) = self.snapshot.load_full() else {
            // No cluster state yet: an NXDOMAIN now would be cached by clients as a lie.
            return Outcome::Reply(self.finish(resp, ResponseCode::ServFail, max_size));
        };
        resp.metadata.authoritative = true;
        resp.metadata.recursion_available = self.recursion_available;
        let rcode = answer(&snapshot, qname, query.query_type(), &mut resp);
        if self.caps(transport, query.query_type()) && resp.answers.len() > self.max_udp_answers {
            // The answers are shuffled: the first ones are a random subset.
            resp.answers.truncate(self.max_udp_answers);
            Metrics::inc(&self.metrics.capped_answers);
        }
        if let (Some(age), Some(edns)) = (self.stale_age(), resp.edns.as_mut()) {
            let mut info = EDE_STALE_ANSWER.to_be_bytes().to_vec();
            info.extend_from_slice(format!("cluster state {}s old", age.as_secs()).as_bytes());
            edns.options_mut()
                .insert(EdnsOption::Unknown(EDNS_EDE, info));
            Metrics::inc(&self.metrics.stale_cluster_answers);
        }
        Outcome::Reply(self.finish(resp, rcode, max_size))
    }

    /// Sets the response code, encodes, and truncates to `max_size` when needed.
    fn finish(&self, mut resp: Message, rcode: ResponseCode, max_size: usize) -> Vec<u8> {
        resp.metadata.response_code = rcode;
        self.metrics.count_rcode(rcode.into());
        encode_within(&mut resp, max_size, &self.metrics, self.truncate_bit)
    }
}

/// Encodes `resp` in at most `max_size` bytes: whole if it fits; else without the additional
/// section (which needs no TC, RFC 2181 section 9); else header, question and OPT with TC set,
/// so the client retries over TCP. Without `truncate_bit`, the answers that fit are sent
/// instead, without TC (Mesos-DNS's `SetTruncateBit: false`).
fn encode_within(
    resp: &mut Message,
    max_size: usize,
    metrics: &Metrics,
    truncate_bit: bool,
) -> Vec<u8> {
    let full = resp.to_vec().unwrap_or_default();
    if full.len() <= max_size && !full.is_empty() {
        return full;
    }
    resp.additionals.clear();
    let trimmed = resp.to_vec().unwrap_or_default();
    if trimmed.len() <= max_size && !trimmed.is_empty() {
        return trimmed;
    }
    if !truncate_bit && !resp.answers.is_empty() {
        let fits = |resp: &Message| resp.to_vec().is_ok_and(|b| b.len() <= max_size);
        let all = std::mem::take(&mut resp.answers);
        // The most answers that fit (Mesos-DNS's search from the back of the list).
        let (mut lo, mut hi) = (0, all.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            resp.answers = all[..mid].to_vec();
            if fits(resp) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        resp.answers = all[..lo].to_vec();
        if lo > 0 && fits(resp) {
            Metrics::inc(&metrics.capped_answers);
            return resp.to_vec().unwrap_or_default();
        }
    }
    Metrics::inc(&metrics.truncated_responses);
    resp.answers.clear();
    resp.authorities.clear();
    resp.metadata.truncation = true;
    resp.to_vec().unwrap_or_default()
}

/// Whether the question name is uncompressed and made of letters, digits, hyphens and
/// underscores only.
fn plain_labels(packet: &[u8], q: &wire::Question) -> bool {
    let name = &packet[wire::HEADER..q.name_end];
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            return at + 1 == name.len();
        }
        let Some(label) = name.get(at + 1..at + 1 + len as usize) else {
            return false;
        };
        if len > 63
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return false;
        }
        at += 1 + len as usize;
    }
    false
}

/// A FORMERR response built from the raw header of a packet that didn't parse, or `None` when
/// there is no header or the packet claims to be a response.
fn formerr_from_header(packet: &[u8]) -> Option<Vec<u8>> {
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return None;
    }
    let mut out = vec![0u8; 12];
    out[0] = packet[0];
    out[1] = packet[1];
    // QR=1, keep opcode and RD.
    out[2] = 0x80 | (packet[2] & 0x79);
    out[3] = ResponseCode::FormErr.low();
    Some(out)
}

/// Fills the answer, authority and additional sections for `qname`/`qtype`; returns the rcode.
fn answer(snap: &Snapshot, qname: &Name, qtype: RecordType, resp: &mut Message) -> ResponseCode {
    let key = qname.to_lowercase().to_ascii();
    let Some(entry) = snap.lookup(&key) else {
        resp.add_authority(negative_soa(snap));
        return ResponseCode::NXDomain;
    };
    let apex = snap.is_apex(qname);
    let ttl = snap.ttl;
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    let want = |t: RecordType| qtype == t || qtype == RecordType::ANY;

    if want(RecordType::A) {
        answers.extend(
            entry
                .a
                .iter()
                .map(|ip| Record::from_rdata(qname.clone(), ttl, RData::A(A(*ip)))),
        );
    }
    if want(RecordType::AAAA) {
        answers.extend(
            entry
                .aaaa
                .iter()
                .map(|ip| Record::from_rdata(qname.clone(), ttl, RData::AAAA(AAAA(*ip)))),
        );
    }
    if want(RecordType::SRV) {
        let mut targets_seen: Vec<u32> = Vec::new();
        for srv in entry.srv {
            let target = entry.target(srv);
            answers.push(Record::from_rdata(
                qname.clone(),
                ttl,
                RData::SRV(SRV::new(0, snap.srv_weight, srv.port, target.name.clone())),
            ));
            if let Some(t) = target.entry {
                if !targets_seen.contains(&t) {
                    targets_seen.push(t);
                    push_addresses(&target.name, entry.target_entry(t), ttl, &mut additionals);
                }
            }
        }
    }
    if apex && want(RecordType::SOA) {
        answers.push(soa_record(snap, ttl));
    }
    if apex && want(RecordType::NS) {
        answers.push(Record::from_rdata(
            qname.clone(),
            ttl,
            RData::NS(NS(snap.ns.clone())),
        ));
        if let Some(ns) = snap.lookup(&snap.ns.to_ascii()) {
            push_addresses(&snap.ns, ns, ttl, &mut additionals);
        }
    }

    if answers.is_empty() {
        resp.add_authority(negative_soa(snap));
    } else {
        answers.shuffle(&mut rand::rng());
        resp.insert_answers(answers);
        resp.insert_additionals(additionals);
    }
    ResponseCode::NoError
}

/// Answers a name outside the cluster domain from the snapshot: the PTR of a cluster address,
/// the addresses of a static record.
fn answer_outside(snap: &Snapshot, qname: &Name, key: &str, qtype: RecordType, resp: &mut Message) {
    let ttl = snap.ttl;
    let want = |t: RecordType| qtype == t || qtype == RecordType::ANY;
    let mut answers = Vec::new();
    if want(RecordType::PTR) {
        if let Some(target) = snap.ptr(key).and_then(|t| Name::from_ascii(t).ok()) {
            answers.push(Record::from_rdata(
                qname.clone(),
                ttl,
                RData::PTR(PTR(target)),
            ));
        }
    }
    if let Some(host) = snap.outside(key) {
        if want(RecordType::A) {
            answers.extend(
                host.a
                    .iter()
                    .map(|ip| Record::from_rdata(qname.clone(), ttl, RData::A(A(*ip)))),
            );
        }
        if want(RecordType::AAAA) {
            answers.extend(
                host.aaaa
                    .iter()
                    .map(|ip| Record::from_rdata(qname.clone(), ttl, RData::AAAA(AAAA(*ip)))),
            );
        }
    }
    answers.shuffle(&mut rand::rng());
    resp.insert_answers(answers);
}

fn push_addresses(name: &Name, entry: Entry<'_>, ttl: u32, out: &mut Vec<Record>) {
    out.extend(
        entry
            .a
            .iter()
            .map(|ip| Record::from_rdata(name.clone(), ttl, RData::A(A(*ip)))),
    );
    out.extend(
        entry
            .aaaa
            .iter()
            .map(|ip| Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(*ip)))),
    );
}

/// The SOA for the authority section of a negative answer: its TTL is the smaller of the
/// record TTL and the SOA minimum, which is how long resolvers may cache the negative answer
/// (RFC 2308 section 5).
fn negative_soa(snap: &Snapshot) -> Record {
    soa_record(snap, snap.ttl.min(snap.soa.minimum))
}

/// The domain's SOA record.
fn soa_record(snap: &Snapshot, ttl: u32) -> Record {
    let s = &snap.soa;
    let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    Record::from_rdata(
        snap.domain.clone(),
        ttl,
        RData::SOA(SOA::new(
            s.mname.clone(),
            s.rname.clone(),
            s.serial,
            as_i32(s.refresh),
            as_i32(s.retry),
            as_i32(s.expire),
            s.minimum,
        )),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::Query;
    use hickory_proto::rr::rdata::opt::EdnsCode;

    use super::*;
    use crate::config::Config;
    use crate::mesos::demo::DEMO_STATE;
    use crate::mesos::model::State;
    use crate::records::{build, HostAddrs, RecordSettings};

    fn responder(state: &[u8]) -> Responder {
        let state = State::from_json(state).unwrap();
        // Distinct values, so a field taken from the wrong place shows.
        let config = Config {
            ttl: 120,
            soa_minttl: 30,
            soa_refresh: 3_000_000_000,
            srv_record_default_weight: 3,
            ..Config::default()
        };
        let settings = RecordSettings::from_config(&config, vec!["10.0.0.1".parse().unwrap()]);
        let mut hosts = HostAddrs::new();
        hosts.insert("localhost".into(), vec!["127.0.0.1".parse().unwrap()]);
        let snap = build(&state, &settings, &hosts, 7).unwrap();
        Responder::new(
            "mesos",
            Arc::new(ArcSwapOption::from_pointee(snap)),
            Arc::new(Metrics::default()),
            true,
            true,
        )
        .unwrap()
    }

    fn query(name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0xbeef;
        m.metadata.recursion_desired = true;
        m.metadata.checking_disabled = edns.is_some_and(|(_, dnssec_ok)| dnssec_ok);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((payload, dnssec_ok)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    /// A response in a form where record order and owner-name case don't matter.
    fn canonical(bytes: &[u8]) -> String {
        let m = Message::from_vec(bytes).unwrap();
        let sorted = |records: &[Record]| {
            let mut v: Vec<String> = records
                .iter()
                .map(|r| r.to_string().to_lowercase())
                .collect();
            v.sort();
            v
        };
        format!(
            "{:?}\n{:?}\nanswers {:?}\nauthority {:?}\nadditional {:?}\nedns {:?}",
            m.metadata,
            m.queries,
            sorted(&m.answers),
            sorted(&m.authorities),
            sorted(&m.additionals),
            m.edns,
        )
    }

    /// Every answer the fast path gives is the general path's answer, for every name of two
    /// clusters, names that don't exist, every record type it handles and others, with and
    /// without EDNS, over both transports.
    #[test]
    fn fast_path_answers_as_the_general_path_does() {
        let fixture = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster.json"),
        )
        .unwrap();
        let (mut fast_answers, mut truncated) = (0, 0);
        let synthetic = crate::mesos::synthetic::state_json(300);
        // With the UDP answer cap on, the fast path must still answer only what the general
        // path answers the same way (capped sets go the general way).
        let responders = [&fixture[..], DEMO_STATE, &synthetic[..]]
            .into_iter()
            .flat_map(|state| {
                [
                    responder(state),
                    responder(state).with_max_udp_answers(2),
                    responder(state).with_truncate_bit(false),
                ]
            });
        for r in responders {
            let snap = r.snapshot.load_full().unwrap();
            let mut names: Vec<String> = snap.names().map(|(n, _)| n.to_string()).collect();
            names.sort();
            let upper: Vec<String> = names.iter().take(20).map(|n| n.to_uppercase()).collect();
            names.extend(upper);
            for missing in [
                "nope.mesos.",
                "www.example.com.marathon.mesos.",
                "a.b.c.d.mesos.",
            ] {
                names.push(missing.into());
            }
            let types = [
                RecordType::A,
                RecordType::AAAA,
                RecordType::SRV,
                RecordType::MX,
                RecordType::TXT,
                RecordType::CNAME,
                RecordType::NS,
                RecordType::SOA,
                RecordType::ANY,
            ];
            for name in &names {
                for qtype in types {
                    for edns in [None, Some((4096, false)), Some((512, true))] {
                        for transport in [Transport::Udp, Transport::Tcp] {
                            let q = query(name, qtype, edns);
                            let Some(Outcome::Reply(fast)) = r.fast_path(&q, transport) else {
                                continue;
                            };
                            let Outcome::Reply(general) = r.handle_parsed(&q, transport) else {
                                panic!("general path didn't answer {name} {qtype}");
                            };
                            assert_eq!(
                                canonical(&fast),
                                canonical(&general),
                                "{name} {qtype} {edns:?} {transport:?}"
                            );
                            fast_answers += 1;
                            truncated += usize::from(wire::truncated(&fast));
                        }
                    }
                }
            }
        }
        // Positive, NODATA and NXDOMAIN answers of both clusters went through it.
        assert!(
            fast_answers > 1000,
            "fast path answered only {fast_answers}"
        );
        // Large SRV sets over UDP exercised the truncation code.
        assert!(truncated > 0, "no fast answer was truncated");
        let r = responder(DEMO_STATE);
        for (name, qtype, rcode) in [
            ("web.marathon.mesos.", RecordType::A, 0),
            ("_web._tcp.marathon.mesos.", RecordType::SRV, 0),
            ("web.marathon.mesos.", RecordType::MX, 0),
            ("nope.mesos.", RecordType::A, 3),
        ] {
            let Some(Outcome::Reply(resp)) = r.fast_path(&query(name, qtype, None), Transport::Udp)
            else {
                panic!("{name} {qtype} not answered by the fast path");
            };
            assert_eq!(wire::rcode(&resp), rcode);
        }
    }

    /// The record values of a response's answer section, and whether it has TC set.
    fn answer_set(bytes: &[u8]) -> (Vec<String>, bool) {
        let m = Message::from_vec(bytes).unwrap();
        let set = m.answers.iter().map(|r| r.data.to_string()).collect();
        (set, m.metadata.truncation)
    }

    /// The Extended DNS Error option's data in a response, if any.
    fn extended_error(bytes: &[u8]) -> Option<Vec<u8>> {
        let m = Message::from_vec(bytes).unwrap();
        match m.edns?.options().get(EdnsCode::Unknown(EDNS_EDE))? {
            EdnsOption::Unknown(_, data) => Some(data.clone()),
            other => panic!("unexpected option {other:?}"),
        }
    }

    fn reply(outcome: Outcome) -> Vec<u8> {
        match outcome {
            Outcome::Reply(bytes) => bytes,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// A stale state puts "Stale Answer" in every cluster answer to an EDNS query, positive,
    /// NODATA and NXDOMAIN alike (so the fast path must step aside), and nothing otherwise.
    #[test]
    fn stale_state_marks_cluster_answers_with_extended_error_3() {
        let age = Arc::new(std::sync::Mutex::new(Duration::from_secs(100)));
        let r = responder(DEMO_STATE).with_stale_after(Duration::from_secs(30), {
            let age = age.clone();
            Arc::new(move || Some(*age.lock().unwrap()))
        });
        let cases = [
            ("web.marathon.mesos.", RecordType::A),
            ("_web._tcp.marathon.mesos.", RecordType::SRV),
            ("web.marathon.mesos.", RecordType::MX),
            ("nope.mesos.", RecordType::A),
            ("mesos.", RecordType::SOA),
        ];
        for (name, qtype) in cases {
            for transport in [Transport::Udp, Transport::Tcp] {
                let resp = reply(r.handle(&query(name, qtype, Some((1232, false))), transport));
                let ede = extended_error(&resp).unwrap_or_else(|| panic!("{name} {qtype}"));
                assert_eq!(ede[..2], [0, 3], "{name} {qtype}");
                assert_eq!(&ede[2..], b"cluster state 100s old");
                // Without EDNS the answer has no OPT record at all.
                let plain = reply(r.handle(&query(name, qtype, None), transport));
                assert!(Message::from_vec(&plain).unwrap().edns.is_none());
            }
        }
        assert!(Metrics::get(&r.metrics.stale_cluster_answers) >= 10);
        // Fresh again: no marker, and the fast path answers as before.
        *age.lock().unwrap() = Duration::from_secs(30);
        let q = query("web.marathon.mesos.", RecordType::A, Some((1232, false)));
        assert!(r.fast_path(&q, Transport::Udp).is_some());
        assert_eq!(extended_error(&reply(r.handle(&q, Transport::Udp))), None);
        // Off (zero) never marks.
        let off = responder(DEMO_STATE).with_stale_after(Duration::ZERO, Arc::new(|| None));
        assert!(off.staleness.is_none());
    }

    /// Over UDP an A set larger than `maxUdpAnswers` is a random subset of that size without
    /// TC; TCP gets everything; sets within the cap are untouched.
    #[test]
    fn udp_answer_sets_are_capped_to_a_random_subset() {
        let synthetic = crate::mesos::synthetic::state_json(300);
        let r = responder(&synthetic).with_max_udp_answers(3);
        let q = query("slave.mesos.", RecordType::A, None);
        let (all, tc) = answer_set(&reply(r.handle(&q, Transport::Tcp)));
        assert!(all.len() > 10 && !tc, "{} agents", all.len());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let (set, tc) = answer_set(&reply(r.handle(&q, Transport::Udp)));
            assert!(!tc);
            assert_eq!(set.len(), 3);
            assert!(set.iter().all(|a| all.contains(a)));
            let mut sorted = set.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "{set:?}");
            seen.insert(sorted);
        }
        assert!(seen.len() > 1, "always the same subset");
        assert_eq!(Metrics::get(&r.metrics.capped_answers), 20);
        // A set within the cap still takes the fast path.
        let leader = query("leader.mesos.", RecordType::A, None);
        assert!(r.fast_path(&leader, Transport::Udp).is_some());
    }
}
