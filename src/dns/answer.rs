//! The authoritative answers for the cluster domain.
//!
//! Pure with respect to I/O: a [`Request`] in, a [`Reply`] out, so both transports share it
//! and tests can drive it directly. The router ([`crate::dns::server::Handlers::route`]) sends
//! here only names [`Responder::serves`]; everything else is the forwarder's. Answers follow RFC
//! 1034/2308 where Mesos-DNS is loose (NODATA with the SOA for an existing name of another type,
//! NXDOMAIN only when nothing exists at or below a name), with Mesos-DNS's record values.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use rand::seq::SliceRandom;

use super::fast;
use super::hot_cluster::HotCluster;
use super::request::{
    encode_cut, encode_within, error_reply, response_to, Reply, Request, Transport,
};
use super::wire::{self, Question, OUR_UDP_PAYLOAD};
use crate::config::Config;
use crate::metrics::{Metrics, Path};
use crate::records::snapshot::{Entry, Snapshot};

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

/// Answers requests for the cluster domain from the current snapshot.
pub struct Responder {
    snapshot: Arc<ArcSwapOption<Snapshot>>,
    metrics: Arc<Metrics>,
    domain: Name,
    /// The domain as lowercase text with trailing dot, the spelling of `Question::name_lower`.
    domain_text: Vec<u8>,
    /// The domain in wire form (length-prefixed lowercase labels, then the root).
    domain_wire: Vec<u8>,
    recursion_available: bool,
    /// `staleAfterSeconds`: `None` never signals staleness.
    staleness: Option<Staleness>,
    /// `maxUdpAnswers`: 0 never caps.
    max_udp_answers: usize,
    /// `SetTruncateBit`: false cuts cluster answers to fit without TC, as Mesos-DNS does.
    truncate_bit: bool,
}

impl Responder {
    /// The responder the configuration asks for: `domain`, RA from `recurseon`,
    /// `staleAfterSeconds` against `age` (how old the served state is), `maxUdpAnswers` and
    /// `SetTruncateBit`.
    pub fn from_config(
        c: &Config,
        snapshot: Arc<ArcSwapOption<Snapshot>>,
        metrics: Arc<Metrics>,
        age: Arc<dyn Fn() -> Option<Duration> + Send + Sync>,
    ) -> Result<Responder, hickory_proto::ProtoError> {
        Ok(Responder::new(&c.domain, snapshot, metrics, c.recurse_on)?
            .with_stale_after(Duration::from_secs(c.stale_after_seconds), age)
            .with_max_udp_answers(c.max_udp_answers)
            .with_truncate_bit(c.set_truncate_bit))
    }

    /// A responder for `domain` (lowercase, no trailing dot) reading `snapshot`.
    pub fn new(
        domain: &str,
        snapshot: Arc<ArcSwapOption<Snapshot>>,
        metrics: Arc<Metrics>,
        recursion_available: bool,
    ) -> Result<Responder, hickory_proto::ProtoError> {
        let name = Name::from_ascii(format!("{domain}."))?.to_lowercase();
        let mut domain_wire = Vec::new();
        for label in name.iter() {
            domain_wire.push(label.len() as u8);
            domain_wire.extend_from_slice(label);
        }
        domain_wire.push(0);
        Ok(Responder {
            snapshot,
            metrics,
            domain: name,
            domain_text: format!("{domain}.").into_bytes(),
            domain_wire,
            recursion_available,
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

    /// The zone test, the one the router asks: whether the question's name (in `packet`) is
    /// the cluster domain or below it, label by label and ignoring ASCII case, as hickory's
    /// `Name::zone_of` decides. Read on the wire: a hop over each label to the one where the
    /// domain's length is left, then one comparison, so it costs a forwarded name almost
    /// nothing. A compressed question name (rare) is decoded and tested by hickory; one that
    /// does not decode counts as ours, and gets FORMERR from the general path.
    pub fn serves(&self, q: &Question, packet: &[u8]) -> bool {
        self.serves_name(packet, q.name_end)
    }

    /// [`Responder::serves`] for the question name of `packet` that ends at `name_end`.
    pub fn serves_name(&self, packet: &[u8], name_end: usize) -> bool {
        let name = &packet[wire::HEADER..name_end];
        let mut at = 0;
        while let Some(&len) = name.get(at) {
            if name.len() - at == self.domain_wire.len() {
                return name[at..].eq_ignore_ascii_case(&self.domain_wire);
            }
            match len {
                0 => return false,
                1..=63 => at += 1 + len as usize,
                _ => break,
            }
        }
        if at >= name.len() {
            return false;
        }
        let mut decoder = BinDecoder::new(packet);
        if decoder.read_slice(wire::HEADER).is_err() {
            return true;
        }
        Name::read(&mut decoder).map_or(true, |name| self.domain.zone_of(&name))
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

    /// Answers a request for a name [`Responder::serves`], authoritatively: the common
    /// answers on the fast path ([`fast::answer`]), the rest on the general path. `None` sends
    /// nothing (a packet hickory cannot decode and that has no header to answer).
    pub fn answer(&self, req: &Request<'_>) -> Option<Reply> {
        if let Some(reply) = self.fast_path(req) {
            return Some(reply);
        }
        self.general(req)
    }

    /// The answer a UDP reader thread holds ([`HotCluster`]) for `packet`, a query as it came
    /// for a name of the cluster domain ([`Responder::serves_name`]), before anything is
    /// parsed: one hash lookup. `None` when the query is to be answered as usual.
    pub fn answer_held(&self, packet: &[u8], held: &mut HotCluster) -> Option<Reply> {
        if held.is_empty() {
            return None;
        }
        let snapshot = self.snapshot.load();
        // Stale answers carry an EDE: on the general path, never held.
        if self.stale_age().is_some() {
            return None;
        }
        held.get(packet, snapshot.as_ref()?)
    }

    /// The snapshot in force, if one is loaded: what decides which names outside the domain
    /// are answered here rather than forwarded.
    pub fn snapshot(&self) -> arc_swap::Guard<Option<Arc<Snapshot>>> {
        self.snapshot.load()
    }

    /// [`Responder::answer`] for a UDP reader thread: a fast-path answer is also held in the
    /// thread's [`HotCluster`], for [`Responder::answer_held`] to find next time.
    pub fn answer_udp(&self, req: &Request<'_>, held: &mut HotCluster) -> Option<Reply> {
        let snapshot = self.snapshot.load();
        if let Some(snap) = snapshot.as_ref() {
            // Stale answers carry an EDE and capped answer sets are cut: both on the general
            // path, never held.
            if self.stale_age().is_none() {
                if let Some(reply) = self.fast_path_in(req, snap) {
                    held.put(req.bytes(), snap, &reply);
                    return Some(reply);
                }
            }
        }
        self.general(req)
    }

    /// Answers a plain question from the raw request, without decoding it into a `Message`:
    /// the common cluster answers are written by `fast`. `None` sends the request down the
    /// general path.
    fn fast_path(&self, req: &Request<'_>) -> Option<Reply> {
        // Stale answers carry an EDE and capped answer sets are cut: both on the general path.
        if self.stale_age().is_some() {
            return None;
        }
        self.fast_path_in(req, self.snapshot.load().as_deref()?)
    }

    /// [`Responder::fast_path`] from `snapshot`, once the answer is known not to be stale.
    fn fast_path_in(&self, req: &Request<'_>, snapshot: &Snapshot) -> Option<Reply> {
        let packet = req.bytes();
        let question = &req.question;
        // Nothing in answer/authority, only an OPT record after the question, and only plain
        // hostname labels (which makes the lowercase text an exact image of the wire name).
        if packet[6..12] != [0, 0, 0, 0, 0, u8::from(req.edns.present)]
            || !wire::plain_name(packet, question)
        {
            return None;
        }
        let qtype = RecordType::from(question.qtype);
        if self.caps(req.transport, qtype) {
            let key = std::str::from_utf8(&question.name_lower).ok()?;
            let entry = snapshot.lookup(key);
            let size = entry.map_or(0, |e| match qtype {
                RecordType::A => e.a.len(),
                _ => e.aaaa.len(),
            });
            if size > self.max_udp_answers {
                return None;
            }
        }
        let framing = fast::Framing {
            edns: req.edns.present,
            dnssec_ok: req.edns.dnssec_ok,
            max_size: req.max_size,
            our_payload: OUR_UDP_PAYLOAD,
            recursion_available: self.recursion_available,
        };
        let (bytes, rcode) =
            fast::answer(packet, question, self.domain_text.len(), snapshot, framing)?;
        if !self.truncate_bit && wire::truncated(&bytes) {
            // Cut without TC on the general path.
            return None;
        }
        Some(Reply {
            bytes,
            path: Path::of_rcode(rcode.into()),
            rcode: rcode.into(),
            qtype: Some(question.qtype),
        })
    }

    /// Answers a question outside the cluster domain that [`Responder::answers_outside_zone`]
    /// claims (the PTR of a cluster address, a static record), on the general path.
    pub fn answer_outside_zone(&self, req: &Request<'_>) -> Option<Reply> {
        self.general(req)
    }

    /// Whether a question outside the cluster domain is answered from the snapshot (reverse
    /// lookups, static records) instead of forwarded: the router's one hook for such names.
    pub fn answers_outside_zone(&self, question: &Question) -> bool {
        let qtype = RecordType::from(question.qtype);
        let snapshot = self.snapshot.load();
        let Some(s) = snapshot
            .as_deref()
            .filter(|s| s.answers_any_outside_zone(qtype))
        else {
            return false;
        };
        std::str::from_utf8(&question.name_lower)
            .is_ok_and(|key| s.answers_outside_zone(key, qtype))
    }

    /// Decodes the request with hickory and builds the answer as a `Message`: SOA and NS at
    /// the apex, ANY, stale and capped answers, and whatever the fast path declines.
    fn general(&self, req: &Request<'_>) -> Option<Reply> {
        let qtype = Some(req.question.qtype);
        let Ok(request) = Message::from_vec(req.bytes()) else {
            // Read from the raw bytes, but not a message hickory accepts (a name over 255
            // bytes, say): FORMERR, as for any malformed packet.
            return req.error(ResponseCode::FormErr, &self.metrics);
        };
        let Some(query) = request.queries.first() else {
            return Some(error_reply(
                &request,
                ResponseCode::FormErr,
                req.max_size,
                qtype,
            ));
        };
        let qname = query.name();
        if !self.domain.zone_of(qname) {
            // Routed here only when the snapshot answers it (Responder::answers_outside_zone).
            let key = qname.to_lowercase().to_ascii();
            let local = self
                .snapshot
                .load_full()
                .filter(|s| s.answers_outside_zone(&key, query.query_type()))
                .filter(|_| query.query_class() == DNSClass::IN);
            let Some(snapshot) = local else {
                return Some(error_reply(
                    &request,
                    ResponseCode::Refused,
                    req.max_size,
                    qtype,
                ));
            };
            let mut resp = response_to(&request);
            resp.metadata.authoritative = true;
            resp.metadata.recursion_available = self.recursion_available;
            answer_outside(&snapshot, qname, &key, query.query_type(), &mut resp);
            resp.metadata.response_code = ResponseCode::NoError;
            return Some(Reply {
                bytes: encode_within(&mut resp, req.max_size),
                path: Path::of_rcode(ResponseCode::NoError.into()),
                rcode: ResponseCode::NoError.into(),
                qtype,
            });
        }
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY)
            // No zone transfers over DNS (Mesos-DNS offers the zone as /v1/axfr instead).
            || matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR)
        {
            return Some(error_reply(
                &request,
                ResponseCode::Refused,
                req.max_size,
                qtype,
            ));
        }
        let Some(snapshot) = self.snapshot.load_full() else {
            // No cluster state yet: an NXDOMAIN now would be cached by clients as a lie.
            return Some(error_reply(
                &request,
                ResponseCode::ServFail,
                req.max_size,
                qtype,
            ));
        };
        let mut resp = response_to(&request);
        resp.metadata.authoritative = true;
        resp.metadata.recursion_available = self.recursion_available;
        let rcode = answer(&snapshot, qname, query.query_type(), &mut resp);
        if self.caps(req.transport, query.query_type()) && resp.answers.len() > self.max_udp_answers
        {
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
        resp.metadata.response_code = rcode;
        Some(Reply {
            bytes: if self.truncate_bit {
                encode_within(&mut resp, req.max_size)
            } else {
                encode_cut(&mut resp, req.max_size, &self.metrics)
            },
            path: Path::of_rcode(rcode.into()),
            rcode: rcode.into(),
            qtype,
        })
    }
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
        // Targets told apart by where their stored name lies.
        let mut targets_seen: Vec<usize> = Vec::new();
        for srv in entry.srv {
            let target = entry.target(srv);
            // Stored names are valid (checked when the snapshot was built).
            let Ok(tname) = Name::from_ascii(target.name) else {
                continue;
            };
            answers.push(Record::from_rdata(
                qname.clone(),
                ttl,
                RData::SRV(SRV::new(0, snap.srv_weight, srv.port, tname.clone())),
            ));
            let id = target.name.as_ptr() as usize;
            if !targets_seen.contains(&id) {
                targets_seen.push(id);
                if let Some(t) = snap.target_entry(&entry, &target) {
                    push_addresses(&tname, t, ttl, &mut additionals);
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

    use hickory_proto::op::{Edns, Query};
    use hickory_proto::rr::rdata::opt::EdnsCode;

    use super::*;
    use crate::config::Config;
    use crate::mesos::demo::DEMO_STATE;
    use crate::mesos::model::State;
    use crate::records::{build, HostAddrs, RecordSettings};

    fn responder(state: &[u8]) -> Responder {
        responder_in_buckets(state, crate::records::generator::TASKS_PER_BUCKET)
    }

    /// A responder whose groups are split into buckets of about `per_bucket` tasks.
    fn responder_in_buckets(state: &[u8], per_bucket: usize) -> Responder {
        Responder::new(
            "mesos",
            Arc::new(ArcSwapOption::from_pointee(snapshot_in_buckets(
                state, per_bucket, 7,
            ))),
            Arc::new(Metrics::default()),
            true,
        )
        .unwrap()
    }

    /// The snapshot of `state` with groups in buckets of about `per_bucket` tasks and SOA
    /// serial `serial`.
    fn snapshot_in_buckets(state: &[u8], per_bucket: usize, serial: u32) -> Snapshot {
        let state = State::from_json(state).unwrap();
        // Distinct values, so a field taken from the wrong place shows.
        let config = Config {
            ttl: 120,
            soa_minttl: 30,
            soa_refresh: 3_000_000_000,
            srv_record_default_weight: 3,
            ..Config::default()
        };
        let mut settings = RecordSettings::from_config(&config, vec!["10.0.0.1".parse().unwrap()]);
        settings.tasks_per_bucket = per_bucket;
        let mut hosts = HostAddrs::new();
        hosts.insert("localhost".into(), vec!["127.0.0.1".parse().unwrap()]);
        build(&state, &settings, &hosts, serial).unwrap()
    }

    fn request(bytes: &[u8], transport: Transport) -> Request<'_> {
        Request::parse(bytes, transport, &Metrics::default()).unwrap()
    }

    /// The responder's answer to a query for one of its names.
    fn handle(r: &Responder, bytes: &[u8], transport: Transport) -> Vec<u8> {
        let req = request(bytes, transport);
        assert!(r.serves(&req.question, bytes));
        r.answer(&req).expect("an answer").bytes
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

    /// Every answer the fast path gives is the general path's answer, for every name of three
    /// clusters (each also with its groups split into buckets of one task), names that don't
    /// exist, every record type it handles and others, with and without EDNS (a 700-byte
    /// payload among them, where large SRV answers fit and their additional section does not),
    /// over both transports.
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
                    responder_in_buckets(state, 1),
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
                    for edns in [
                        None,
                        Some((4096, false)),
                        Some((512, true)),
                        Some((700, false)),
                    ] {
                        for transport in [Transport::Udp, Transport::Tcp] {
                            let q = query(name, qtype, edns);
                            let req = request(&q, transport);
                            let Some(fast) = r.fast_path(&req) else {
                                continue;
                            };
                            let Some(general) = r.general(&req) else {
                                panic!("general path didn't answer {name} {qtype}");
                            };
                            assert_eq!(
                                canonical(&fast.bytes),
                                canonical(&general.bytes),
                                "{name} {qtype} {edns:?} {transport:?}"
                            );
                            // And what /metrics counts about them.
                            assert_eq!(
                                (fast.path, fast.rcode, fast.qtype),
                                (general.path, general.rcode, general.qtype)
                            );
                            let fast = fast.bytes;
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
            let q = query(name, qtype, None);
            let Some(resp) = r.fast_path(&request(&q, Transport::Udp)) else {
                panic!("{name} {qtype} not answered by the fast path");
            };
            assert_eq!(wire::rcode(&resp.bytes), rcode);
        }
    }

    /// The targets of a response's SRV answers in the order they first appear, and the owner
    /// names of its additional records with each run of one owner counted once.
    fn targets_and_additional_owners(bytes: &[u8]) -> (Vec<Name>, Vec<Name>) {
        let m = Message::from_vec(bytes).unwrap();
        let mut targets: Vec<Name> = Vec::new();
        for r in &m.answers {
            if let RData::SRV(srv) = &r.data {
                if !targets.contains(&srv.target) {
                    targets.push(srv.target.clone());
                }
            }
        }
        let mut owners: Vec<Name> = m.additionals.iter().map(|r| r.name.clone()).collect();
        owners.dedup();
        (targets, owners)
    }

    /// A reader's held answer is the fast path's answer to the same query with the client's
    /// ID: the same header, records and counts, the records in some order, an SRV answer's
    /// target addresses after the answers in the order the targets first appear, owned by
    /// the targets' names; and what /metrics counts about it. For every name of three
    /// clusters (also in buckets), with and without EDNS, truncated answers included.
    #[test]
    fn held_cluster_answers_are_the_fast_paths_in_a_new_order() {
        let fixture = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster.json"),
        )
        .unwrap();
        let synthetic = crate::mesos::synthetic::state_json(300);
        let (mut held_answers, mut held_srv) = (0, 0);
        let responders = [&fixture[..], DEMO_STATE, &synthetic[..]]
            .into_iter()
            .flat_map(|state| [responder(state), responder_in_buckets(state, 1)]);
        for r in responders {
            let snap = r.snapshot.load_full().unwrap();
            let mut hot = HotCluster::default();
            let mut names: Vec<String> = snap.names().map(|(n, _)| n.to_string()).collect();
            names.sort();
            let upper: Vec<String> = names.iter().take(20).map(|n| n.to_uppercase()).collect();
            names.extend(upper);
            names.extend([
                "nope.mesos.".into(),
                "www.example.com.marathon.mesos.".into(),
            ]);
            for name in &names {
                for qtype in [
                    RecordType::A,
                    RecordType::AAAA,
                    RecordType::SRV,
                    RecordType::MX,
                ] {
                    for edns in [
                        None,
                        Some((4096, false)),
                        Some((512, true)),
                        Some((700, false)),
                    ] {
                        let q = query(name, qtype, edns);
                        let Some(fast) = r.fast_path(&request(&q, Transport::Udp)) else {
                            continue;
                        };
                        hot.put(&q, &snap, &fast);
                        let mut again = q.clone();
                        again[..2].copy_from_slice(&[0x12, 0x34]);
                        let Some(held) = hot.get(&again, &snap) else {
                            continue;
                        };
                        let mut expected = fast.bytes.clone();
                        expected[..2].copy_from_slice(&[0x12, 0x34]);
                        assert_eq!(held.bytes[..12], expected[..12], "{name} {qtype} {edns:?}");
                        assert_eq!(
                            canonical(&held.bytes),
                            canonical(&expected),
                            "{name} {qtype} {edns:?}"
                        );
                        assert_eq!(
                            (held.path, held.rcode, held.qtype),
                            (fast.path, fast.rcode, fast.qtype)
                        );
                        let (targets, owners) = targets_and_additional_owners(&held.bytes);
                        let expected: Vec<Name> =
                            targets.into_iter().filter(|t| owners.contains(t)).collect();
                        assert_eq!(owners, expected, "{name} {qtype} {edns:?}");
                        held_answers += 1;
                        held_srv += usize::from(!owners.is_empty());
                    }
                }
            }
        }
        assert!(held_answers > 1000, "only {held_answers} held");
        assert!(
            held_srv > 100,
            "only {held_srv} SRV answers with addresses held"
        );
    }

    /// Held answers come in exactly the orders the fast path writes, byte for byte.
    #[test]
    fn held_answers_take_the_fast_paths_orders_byte_for_byte() {
        let r = responder(DEMO_STATE);
        let snap = r.snapshot.load_full().unwrap();
        for (name, qtype, orders) in [
            ("_api._tcp.marathon.mesos.", RecordType::SRV, 24),
            ("web.marathon.mesos.", RecordType::A, 6),
        ] {
            let q = query(name, qtype, Some((1232, false)));
            let req = request(&q, Transport::Udp);
            let mut hot = HotCluster::default();
            let mut fast = std::collections::HashSet::new();
            let mut held = std::collections::HashSet::new();
            for _ in 0..2000 {
                let answer = r.fast_path(&req).unwrap();
                hot.put(&q, &snap, &answer);
                fast.insert(answer.bytes);
                held.insert(hot.get(&q, &snap).unwrap().bytes);
            }
            assert_eq!(fast.len(), orders, "{name}");
            assert!(fast == held, "{name}: the held answers' orders differ");
        }
    }

    /// A reader's held answers are served only from the snapshot they were written from, and
    /// step aside for the general path's "Stale Answer" marker while the state is stale.
    #[test]
    fn held_answers_follow_the_snapshot_and_step_aside_when_stale() {
        let age = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let r = responder(DEMO_STATE).with_stale_after(Duration::from_secs(30), {
            let age = age.clone();
            Arc::new(move || Some(*age.lock().unwrap()))
        });
        let mut hot = HotCluster::default();
        let q = query("nope.mesos.", RecordType::A, Some((1232, false)));
        let serial = |bytes: &[u8]| match &Message::from_vec(bytes).unwrap().authorities[0].data {
            RData::SOA(soa) => soa.serial,
            other => panic!("{other:?}"),
        };
        let udp = |hot: &mut HotCluster| {
            r.answer_held(&q, hot)
                .or_else(|| r.answer_udp(&request(&q, Transport::Udp), hot))
                .unwrap()
        };
        let first = udp(&mut hot);
        assert_eq!(serial(&first.bytes), 7);
        let snap = r.snapshot.load_full().unwrap();
        assert!(hot.get(&q, &snap).is_some(), "held");
        assert_eq!(r.answer_held(&q, &mut hot).unwrap().bytes, first.bytes);
        r.snapshot.store(Some(Arc::new(snapshot_in_buckets(
            DEMO_STATE,
            crate::records::generator::TASKS_PER_BUCKET,
            8,
        ))));
        assert!(
            r.answer_held(&q, &mut hot).is_none(),
            "an answer of the old snapshot"
        );
        let next = udp(&mut hot);
        assert_eq!(
            serial(&next.bytes),
            8,
            "an answer of the old snapshot was served"
        );
        *age.lock().unwrap() = Duration::from_secs(100);
        assert!(r.answer_held(&q, &mut hot).is_none(), "held while stale");
        let stale = udp(&mut hot);
        assert_eq!(extended_error(&stale.bytes).unwrap()[..2], [0, 3]);
        *age.lock().unwrap() = Duration::ZERO;
        let fresh = udp(&mut hot);
        assert_eq!(extended_error(&fresh.bytes), None);
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
                let resp = handle(&r, &query(name, qtype, Some((1232, false))), transport);
                let ede = extended_error(&resp).unwrap_or_else(|| panic!("{name} {qtype}"));
                assert_eq!(ede[..2], [0, 3], "{name} {qtype}");
                assert_eq!(&ede[2..], b"cluster state 100s old");
                // Without EDNS the answer has no OPT record at all.
                let plain = handle(&r, &query(name, qtype, None), transport);
                assert!(Message::from_vec(&plain).unwrap().edns.is_none());
            }
        }
        assert!(Metrics::get(&r.metrics.stale_cluster_answers) >= 10);
        // Fresh again: no marker, and the fast path answers as before.
        *age.lock().unwrap() = Duration::from_secs(30);
        let q = query("web.marathon.mesos.", RecordType::A, Some((1232, false)));
        assert!(r.fast_path(&request(&q, Transport::Udp)).is_some());
        assert_eq!(extended_error(&handle(&r, &q, Transport::Udp)), None);
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
        let (all, tc) = answer_set(&handle(&r, &q, Transport::Tcp));
        assert!(all.len() > 10 && !tc, "{} agents", all.len());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let (set, tc) = answer_set(&handle(&r, &q, Transport::Udp));
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
        assert!(r.fast_path(&request(&leader, Transport::Udp)).is_some());
    }
}
