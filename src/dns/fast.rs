//! The common cluster answers written straight from the snapshot into wire bytes.
//!
//! Almost every query a node-local resolver sees for the cluster domain is a plain A, AAAA or SRV
//! question for a task name, or a name that doesn't exist (search-list expansions such as
//! `example.com.marathon.mesos`). Building a full `Message` for those costs more than the lookup
//! itself, so they are encoded here directly: the client's question copied as it came, owner
//! names as compression pointers to it; answers too large for the client are trimmed or
//! truncated as the general path does. Anything unusual (ANY, SOA or NS at the apex, many
//! records) returns `None` and takes the general path in `answer`, which
//! produces the same answers; a test holds the two to that.

use std::cell::RefCell;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::wire::Question;
use crate::records::snapshot::{Entry, Snapshot, SrvTarget};

const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_SOA: u16 = 6;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const TYPE_ANY: u16 = 255;
/// Zone transfers: refused by the general path.
const TYPE_AXFR: u16 = 252;
const TYPE_IXFR: u16 = 251;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u8 = 3;

/// Wire length of the OPT record our answers carry when the client sent one.
const OPT_LEN: usize = 11;

/// Answers with more records than this take the general path (and are rare).
const MAX_RECORDS: usize = 64;

/// How the answer is framed: what the fast path needs to know about the request besides its
/// question, and our own settings.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The client sent an OPT record (version 0): answer with ours.
    pub edns: bool,
    /// The client set DNSSEC OK.
    pub dnssec_ok: bool,
    /// Largest response the client accepts over its transport.
    pub max_size: usize,
    /// Our advertised UDP payload size.
    pub our_payload: u16,
    /// Set RA in answers.
    pub recursion_available: bool,
}

/// Answers `packet` (whose single question is `q`, a name at or below the snapshot's domain of
/// `domain_len` wire-text bytes, e.g. 6 for `mesos.`) from `snap`. Returns the response and
/// its rcode, or `None` when the general path must answer.
pub fn answer(
    packet: &[u8],
    q: &Question,
    domain_len: usize,
    snap: &Snapshot,
    req: Framing,
) -> Option<(Vec<u8>, u8)> {
    // Pointers into the question need it uncompressed: wire length = text length + 1.
    let qname_len = q.name_end - super::wire::HEADER;
    if q.qclass != CLASS_IN || qname_len != q.name_lower.len() + 1 {
        return None;
    }
    if matches!(q.qtype, TYPE_AXFR | TYPE_IXFR) {
        return None;
    }
    let key = std::str::from_utf8(&q.name_lower).ok()?;
    let Some(entry) = snap.lookup(key) else {
        let mut w = Writer::start(packet, q, req, RCODE_NXDOMAIN);
        w.negative_soa(snap, qname_len, domain_len);
        return w.finish(req, 0, 1, 0);
    };
    let is_apex = qname_len == domain_len + 1;
    match q.qtype {
        TYPE_ANY => None,
        TYPE_SOA | TYPE_NS if is_apex => None,
        TYPE_A => addresses(
            packet, q, req, entry.a, snap.ttl, snap, qname_len, domain_len,
        ),
        TYPE_AAAA => addresses(
            packet, q, req, entry.aaaa, snap.ttl, snap, qname_len, domain_len,
        ),
        TYPE_SRV => srv(packet, q, req, entry, snap, qname_len, domain_len),
        _ => nodata(packet, q, req, snap, qname_len, domain_len),
    }
}

/// An address the wire writes as A or AAAA.
trait Address: Copy {
    const RTYPE: u16;
    fn octets_into(self, out: &mut Vec<u8>);
}

impl Address for std::net::Ipv4Addr {
    const RTYPE: u16 = TYPE_A;
    fn octets_into(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
}

impl Address for std::net::Ipv6Addr {
    const RTYPE: u16 = TYPE_AAAA;
    fn octets_into(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
}

#[allow(clippy::too_many_arguments)]
fn addresses<T: Address>(
    packet: &[u8],
    q: &Question,
    req: Framing,
    ips: &[T],
    ttl: u32,
    snap: &Snapshot,
    qname_len: usize,
    domain_len: usize,
) -> Option<(Vec<u8>, u8)> {
    if ips.is_empty() {
        return nodata(packet, q, req, snap, qname_len, domain_len);
    }
    let order = shuffled(ips.len())?;
    let mut w = Writer::start(packet, q, req, 0);
    for &i in &order[..ips.len()] {
        w.address(QNAME_POINTER, ttl, ips[i as usize]);
    }
    w.finish(req, ips.len(), 0, 0)
}

fn srv(
    packet: &[u8],
    q: &Question,
    req: Framing,
    entry: Entry<'_>,
    snap: &Snapshot,
    qname_len: usize,
    domain_len: usize,
) -> Option<(Vec<u8>, u8)> {
    let records = entry.srv;
    if records.is_empty() {
        return nodata(packet, q, req, snap, qname_len, domain_len);
    }
    let order = shuffled(records.len())?;
    let mut w = Writer::start(packet, q, req, 0);
    // Each distinct target (told apart by where its stored name lies) and where its name was
    // written, for the additional section.
    let mut targets: [Option<(usize, SrvTarget<'_>, u16)>; MAX_RECORDS] = [None; MAX_RECORDS];
    let mut n_targets = 0;
    for &i in &order[..records.len()] {
        let rec = records[i as usize];
        let target = entry.target(&rec);
        let name_at = w.srv(snap.ttl, snap.srv_weight, rec.port, target.name)?;
        if w.over_limit(req) {
            // The answers alone are more than the client takes, so it gets the question with
            // TC (see `finish`) whatever follows: the rest is neither written nor looked up.
            return w.finish(req, 0, 0, 0);
        }
        let id = target.name.as_ptr() as usize;
        if targets[..n_targets]
            .iter()
            .flatten()
            .any(|&(t, _, _)| t == id)
        {
            continue;
        }
        targets[n_targets] = Some((id, target, name_at));
        n_targets += 1;
    }
    w.answers_end = w.out.len();
    let mut additional = 0;
    for &(_, target, name_at) in targets[..n_targets].iter().flatten() {
        let Some(t) = snap.target_entry(&entry, &target) else {
            continue;
        };
        let pointer = 0xc000 | name_at;
        for &ip in t.a {
            w.address(pointer, snap.ttl, ip);
        }
        for &ip in t.aaaa {
            w.address(pointer, snap.ttl, ip);
        }
        additional += t.a.len() + t.aaaa.len();
        if w.over_limit(req) {
            // `finish` drops the whole additional section now: no more targets to look up.
            break;
        }
    }
    w.finish(req, records.len(), 0, additional)
}

fn nodata(
    packet: &[u8],
    q: &Question,
    req: Framing,
    snap: &Snapshot,
    qname_len: usize,
    domain_len: usize,
) -> Option<(Vec<u8>, u8)> {
    let mut w = Writer::start(packet, q, req, 0);
    w.negative_soa(snap, qname_len, domain_len);
    w.finish(req, 0, 1, 0)
}

/// Indices `0..n` in random order (the order Mesos-DNS clients expect to vary), or `None`
/// when there are too many for the fast path.
pub(super) fn shuffled(n: usize) -> Option<[u8; MAX_RECORDS]> {
    if n > MAX_RECORDS {
        return None;
    }
    let mut order = [0u8; MAX_RECORDS];
    for (i, o) in order.iter_mut().enumerate().take(n) {
        *o = i as u8;
    }
    if n > 1 {
        SHUFFLER.with(|rng| order[..n].shuffle(&mut *rng.borrow_mut()));
    }
    Some(order)
}

thread_local! {
    /// The answer order's randomness, per thread: it spreads clients over a name's tasks and
    /// needs no cryptographic strength, so a small generator seeded once from the thread's
    /// secure one, instead of that one's larger state on every answer.
    static SHUFFLER: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

/// Pointer to the question name, which always starts right after the header.
const QNAME_POINTER: u16 = 0xc000 | super::wire::HEADER as u16;

/// A response being written: header and question first, then records in order.
struct Writer {
    out: Vec<u8>,
    /// End of the question, where a truncated response stops.
    question_end: usize,
    /// End of the answer section once additional records follow, else 0.
    answers_end: usize,
}

impl Writer {
    fn start(packet: &[u8], q: &Question, req: Framing, rcode: u8) -> Writer {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&packet[..2]);
        // QR, OPCODE=QUERY, AA, RD as asked.
        out.push(0x80 | 0x04 | (packet[2] & 0x01));
        // RA, CD as asked, rcode.
        out.push(if req.recursion_available { 0x80 } else { 0 } | (packet[3] & 0x10) | rcode);
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&packet[super::wire::HEADER..q.name_end + 4]);
        let question_end = out.len();
        Writer {
            out,
            question_end,
            answers_end: 0,
        }
    }

    fn record_header(&mut self, owner: u16, rtype: u16, ttl: u32, rdlen: u16) {
        self.out.extend_from_slice(&owner.to_be_bytes());
        self.out.extend_from_slice(&rtype.to_be_bytes());
        self.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out.extend_from_slice(&rdlen.to_be_bytes());
    }

    fn address<T: Address>(&mut self, owner: u16, ttl: u32, ip: T) {
        let len = if T::RTYPE == TYPE_A { 4 } else { 16 };
        self.record_header(owner, T::RTYPE, ttl, len);
        ip.octets_into(&mut self.out);
    }

    /// Writes an SRV record owned by the question name; returns where its target name starts,
    /// or `None` when the message has grown past where pointers can reach.
    fn srv(&mut self, ttl: u32, weight: u16, port: u16, target: &str) -> Option<u16> {
        let rdlen = 6 + text_wire_len(target);
        self.record_header(QNAME_POINTER, TYPE_SRV, ttl, rdlen as u16);
        self.out.extend_from_slice(&0u16.to_be_bytes());
        self.out.extend_from_slice(&weight.to_be_bytes());
        self.out.extend_from_slice(&port.to_be_bytes());
        let at = u16::try_from(self.out.len()).ok().filter(|&a| a < 0x4000)?;
        write_text_name(&mut self.out, target);
        Some(at)
    }

    /// The domain's SOA for a negative answer, owned by the domain: a pointer to the question
    /// name's suffix, since the question is at or below it.
    fn negative_soa(&mut self, snap: &Snapshot, qname_len: usize, domain_len: usize) {
        let s = &snap.soa;
        let owner = 0xc000 | (super::wire::HEADER + qname_len - (domain_len + 1)) as u16;
        let rdlen = wire_len(&s.mname) + wire_len(&s.rname) + 20;
        self.record_header(owner, TYPE_SOA, snap.ttl.min(s.minimum), rdlen as u16);
        write_name(&mut self.out, &s.mname);
        write_name(&mut self.out, &s.rname);
        let clamp = |v: u32| v.min(i32::MAX as u32);
        for v in [
            s.serial,
            clamp(s.refresh),
            clamp(s.retry),
            clamp(s.expire),
            s.minimum,
        ] {
            self.out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// Whether the response written so far, with the OPT record `finish` adds for an EDNS
    /// client, is more than the client takes: the one test of what `finish` cuts, which
    /// `srv` also asks to stop writing what would be cut.
    fn over_limit(&self, req: Framing) -> bool {
        let opt_len = if req.edns { OPT_LEN } else { 0 };
        self.out.len() + opt_len > req.max_size
    }

    /// Sets the counts and appends our OPT record when the client sent one. A response over
    /// the client's limit loses its additional section (which needs no TC, RFC 2181 section
    /// 9), and if still too large all its records, with TC set so the client retries over TCP.
    fn finish(
        mut self,
        req: Framing,
        mut answers: usize,
        mut authority: usize,
        mut additional: usize,
    ) -> Option<(Vec<u8>, u8)> {
        if self.over_limit(req) && self.answers_end > 0 {
            self.out.truncate(self.answers_end);
            additional = 0;
        }
        if self.over_limit(req) {
            self.out.truncate(self.question_end);
            self.out[2] |= 0x02;
            (answers, authority, additional) = (0, 0, 0);
        }
        let additional = additional + usize::from(req.edns);
        self.out[6..8].copy_from_slice(&(answers as u16).to_be_bytes());
        self.out[8..10].copy_from_slice(&(authority as u16).to_be_bytes());
        self.out[10..12].copy_from_slice(&(additional as u16).to_be_bytes());
        if req.edns {
            self.out.push(0);
            self.out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            self.out.extend_from_slice(&req.our_payload.to_be_bytes());
            let flags: u32 = if req.dnssec_ok { 0x8000 } else { 0 };
            self.out.extend_from_slice(&flags.to_be_bytes());
            self.out.extend_from_slice(&0u16.to_be_bytes());
        }
        if self.out.len() > req.max_size {
            return None;
        }
        let rcode = self.out[3] & 0x0f;
        Some((self.out, rcode))
    }
}

/// Uncompressed wire length of a fully qualified name.
fn wire_len(name: &hickory_proto::rr::Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// The wire length of a stored name (lowercase text with its trailing dot, not the root).
fn text_wire_len(name: &str) -> usize {
    name.len() + 1
}

/// Writes a stored name (see [`text_wire_len`]) as uncompressed labels: the text is copied
/// after one byte and each dot then replaced by the length of the label after it (a byte
/// loop over the copy; splitting the text into labels cost more than the copy).
fn write_text_name(out: &mut Vec<u8>, name: &str) {
    let name = name.as_bytes();
    let name = name.strip_suffix(b".").unwrap_or(name);
    let at = out.len();
    out.push(0);
    out.extend_from_slice(name);
    out.push(0);
    let labels = &mut out[at..at + 1 + name.len()];
    let mut len_at = 0;
    for i in 1..labels.len() {
        if labels[i] == b'.' {
            labels[len_at] = (i - len_at - 1) as u8;
            len_at = i;
        }
    }
    labels[len_at] = (labels.len() - len_at - 1) as u8;
}

fn write_name(out: &mut Vec<u8>, name: &hickory_proto::rr::Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(name: &str) -> Vec<u8> {
        let mut out = vec![0xff];
        write_text_name(&mut out, name);
        out
    }

    #[test]
    fn a_stored_name_is_written_as_labels() {
        assert_eq!(
            written("web.marathon.mesos."),
            b"\xff\x03web\x08marathon\x05mesos\x00"
        );
        assert_eq!(written("a."), b"\xff\x01a\x00");
        assert_eq!(
            written("_http._tcp.a-b.mesos."),
            b"\xff\x05_http\x04_tcp\x03a-b\x05mesos\x00"
        );
    }

    #[test]
    fn shuffled_orders_are_permutations_and_vary() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let order = shuffled(5).unwrap();
            let mut sorted = order[..5].to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3, 4]);
            seen.insert(order[..5].to_vec());
        }
        assert!(seen.len() > 20, "only {} orders of 120", seen.len());
        assert!(shuffled(MAX_RECORDS + 1).is_none());
    }
}
