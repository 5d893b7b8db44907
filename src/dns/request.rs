//! A request, parsed once where packets arrive, and the replies sent for it.
//!
//! [`Request::parse`] reads what every later step needs from the raw packet in one pass: the
//! question (its name as lowercase text, type and class), the client's EDNS record, and the
//! response size limit for its transport. The responder, the forwarder and the error answers
//! all take a `Request`, so none of them walks the packet again. Packets that are not a plain
//! query are decoded with hickory instead, which decides what they get: FORMERR, NOTIMP,
//! BADVERS ([`error_reply`], the one builder of the daemon's own error answers), nothing (not a
//! query), or, when they turn out to be an ordinary query after all, a `Request` like any
//! other.
//!
//! A [`Reply`] is a response with what `/metrics` counts about it (query type, response code,
//! answer path); the server counts it once, when it is sent.

use std::borrow::Cow;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};

use super::wire::{self, EdnsInfo, Question, OUR_UDP_PAYLOAD};
use crate::metrics::{Metrics, Path};

/// The transport a request came over, which bounds the response size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the client's EDNS payload size up to our own limit.
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

impl Transport {
    /// The largest response a client accepts over this transport, given the UDP payload size
    /// its EDNS record advertises (`None` without EDNS): the one place the limit is computed.
    pub fn max_size(self, edns_payload: Option<u16>) -> usize {
        match (self, edns_payload) {
            (Transport::Tcp, _) => u16::MAX as usize,
            (Transport::Udp, Some(p)) => p.clamp(512, OUR_UDP_PAYLOAD) as usize,
            (Transport::Udp, None) => 512,
        }
    }
}

/// One query, read from its packet once: what routing, answering, forwarding and error
/// answers need to know.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The packet as received (owned once a forwarded query moves to its own task).
    pub packet: Cow<'a, [u8]>,
    /// The transport it came over.
    pub transport: Transport,
    /// Its single question.
    pub question: Question,
    /// Its EDNS record (version 0), if any.
    pub edns: EdnsInfo,
    /// The largest response the client accepts ([`Transport::max_size`]).
    pub max_size: usize,
}

/// What a packet that is not a query to route gets instead.
#[derive(Debug)]
pub enum Rejected {
    /// An error answer (FORMERR, NOTIMP, BADVERS).
    Reply(Reply),
    /// Nothing: no header to answer, or not a query.
    Drop,
}

impl<'a> Request<'a> {
    /// Parses `packet`, received over `transport`. Plain queries (QR=0, OPCODE=QUERY, one
    /// question, empty answer and authority sections, EDNS version 0 if any) are read from the
    /// raw bytes; anything else is decoded with hickory, counted in `metrics` when malformed,
    /// and either rejected or, when it is a query we serve after all, read like a plain one.
    pub fn parse(
        packet: &'a [u8],
        transport: Transport,
        metrics: &Metrics,
    ) -> Result<Request<'a>, Rejected> {
        match Request::parse_plain(packet, transport) {
            Some(request) => Ok(request),
            None => Request::parse_other(packet, transport, metrics),
        }
    }

    /// The raw reading of a plain query; `None` for anything else.
    fn parse_plain(packet: &'a [u8], transport: Transport) -> Option<Request<'a>> {
        if packet.len() < wire::HEADER || packet[2] & 0xf8 != 0 || packet[6..10] != [0, 0, 0, 0] {
            return None;
        }
        let question = wire::question(packet).ok()?;
        let edns = wire::edns(packet).ok()?;
        if edns.version > 0 {
            return None;
        }
        Some(Request::read(packet, transport, question, edns))
    }

    fn read(
        packet: &'a [u8],
        transport: Transport,
        question: Question,
        edns: EdnsInfo,
    ) -> Request<'a> {
        Request {
            packet: Cow::Borrowed(packet),
            transport,
            max_size: transport.max_size(edns.present.then_some(edns.payload)),
            question,
            edns,
        }
    }

    /// Decodes what `parse_plain` declined with hickory: the errors a request can be
    /// answered with are decided here, in the order RFC 6891 and RFC 1035 give them.
    fn parse_other(
        packet: &'a [u8],
        transport: Transport,
        metrics: &Metrics,
    ) -> Result<Request<'a>, Rejected> {
        let Ok(message) = Message::from_vec(packet) else {
            Metrics::inc(&metrics.malformed_packets);
            return formerr_from_header(packet).map_or(Err(Rejected::Drop), |bytes| {
                Err(Rejected::Reply(Reply {
                    bytes,
                    path: Path::RefusedOrError,
                    rcode: ResponseCode::FormErr.into(),
                    qtype: None,
                }))
            });
        };
        if message.metadata.message_type != MessageType::Query {
            Metrics::inc(&metrics.malformed_packets);
            return Err(Rejected::Drop);
        }
        let max_size = transport.max_size(message.edns.as_ref().map(Edns::max_payload));
        let rcode = if message.edns.as_ref().is_some_and(|e| e.version() > 0) {
            ResponseCode::BADVERS
        } else if message.metadata.op_code != OpCode::Query {
            ResponseCode::NotImp
        } else if message.queries.len() != 1 {
            ResponseCode::FormErr
        } else if let (Ok(question), Ok(edns)) = (wire::question(packet), wire::edns(packet)) {
            return Ok(Request::read(packet, transport, question, edns));
        } else {
            ResponseCode::FormErr
        };
        Err(Rejected::Reply(error_reply(
            &message, rcode, max_size, None,
        )))
    }

    /// The same request owning its packet, to answer on another task.
    pub fn into_owned(self) -> Request<'static> {
        Request {
            packet: Cow::Owned(self.packet.into_owned()),
            transport: self.transport,
            question: self.question,
            edns: self.edns,
            max_size: self.max_size,
        }
    }

    /// The packet's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.packet
    }

    /// The error answer `rcode` to this request (REFUSED, SERVFAIL), built by [`error_reply`].
    /// `None` when hickory cannot decode the packet after all, which a request read from the
    /// raw bytes can still be (a name too long, say): it gets FORMERR then.
    pub fn error(&self, rcode: ResponseCode, metrics: &Metrics) -> Option<Reply> {
        match Message::from_vec(self.bytes()) {
            Ok(message) => Some(error_reply(
                &message,
                rcode,
                self.max_size,
                Some(self.question.qtype),
            )),
            Err(_) => {
                Metrics::inc(&metrics.malformed_packets);
                let bytes = formerr_from_header(self.bytes())?;
                Some(Reply {
                    bytes,
                    path: Path::RefusedOrError,
                    rcode: ResponseCode::FormErr.into(),
                    qtype: None,
                })
            }
        }
    }
}

/// A response ready to send, with what `/metrics` counts about it when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The response message.
    pub bytes: Vec<u8>,
    /// How it was produced (the latency histogram it goes to).
    pub path: Path,
    /// Its response code, extended codes (BADVERS) included.
    pub rcode: u16,
    /// The type of the question it answers; `None` for packets that were no query to route.
    pub qtype: Option<u16>,
}

impl Reply {
    /// A response to `request` whose code is in its header (every answer but BADVERS).
    pub fn to(request: &Request<'_>, bytes: Vec<u8>, path: Path) -> Reply {
        Reply {
            rcode: u16::from(wire::rcode(&bytes)),
            bytes,
            path,
            qtype: Some(request.question.qtype),
        }
    }
}

/// The one builder of the error answers the daemon gives itself (FORMERR, NOTIMP, BADVERS,
/// REFUSED, and SERVFAIL while no cluster state is loaded): the request's ID, opcode, RD and CD
/// bits and questions, no records, our OPT record (its DO bit echoed) when the request had
/// one, encoded within `max_size`. `qtype` is the routed question's type, if there is one.
pub fn error_reply(
    request: &Message,
    rcode: ResponseCode,
    max_size: usize,
    qtype: Option<u16>,
) -> Reply {
    let mut resp = response_to(request);
    resp.metadata.response_code = rcode;
    Reply {
        bytes: encode_within(&mut resp, max_size),
        path: Path::of_rcode(rcode.into()),
        rcode: rcode.into(),
        qtype,
    }
}

/// The empty response to `request` that every answer built with hickory starts from: the
/// request's ID, opcode, RD and CD bits and questions, and our OPT record when it had one.
pub fn response_to(request: &Message) -> Message {
    let mut resp = Message::response(request.metadata.id, request.metadata.op_code);
    resp.metadata.recursion_desired = request.metadata.recursion_desired;
    resp.metadata.checking_disabled = request.metadata.checking_disabled;
    resp.add_queries(request.queries.iter().cloned());
    if let Some(req_edns) = &request.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(OUR_UDP_PAYLOAD);
        edns.set_version(0);
        edns.set_dnssec_ok(req_edns.flags().dnssec_ok);
        resp.set_edns(edns);
    }
    resp
}

/// Encodes `resp` in at most `max_size` bytes: whole if it fits; else without the additional
/// section (which needs no TC, RFC 2181 section 9); else header, question and OPT with TC set,
/// so the client retries over TCP.
pub fn encode_within(resp: &mut Message, max_size: usize) -> Vec<u8> {
    let full = resp.to_vec().unwrap_or_default();
    if full.len() <= max_size && !full.is_empty() {
        return full;
    }
    resp.additionals.clear();
    let trimmed = resp.to_vec().unwrap_or_default();
    if trimmed.len() <= max_size && !trimmed.is_empty() {
        return trimmed;
    }
    resp.answers.clear();
    resp.authorities.clear();
    resp.metadata.truncation = true;
    resp.to_vec().unwrap_or_default()
}

/// As [`encode_within`], but an answer too large is cut to the answers that fit and sent
/// without TC, as Mesos-DNS does with `SetTruncateBit: false` (counted as a capped answer);
/// TC only when not even one answer fits.
pub fn encode_cut(resp: &mut Message, max_size: usize, metrics: &Metrics) -> Vec<u8> {
    let full = resp.to_vec().unwrap_or_default();
    if full.len() <= max_size && !full.is_empty() {
        return full;
    }
    resp.additionals.clear();
    let fits = |resp: &Message| resp.to_vec().is_ok_and(|b| b.len() <= max_size);
    if !resp.answers.is_empty() && !fits(resp) {
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
        }
    }
    encode_within(resp, max_size)
}

/// A FORMERR response built from the raw header of a packet that didn't parse, or `None` when
/// there is no header or the packet claims to be a response.
fn formerr_from_header(packet: &[u8]) -> Option<Vec<u8>> {
    if packet.len() < wire::HEADER || packet[2] & 0x80 != 0 {
        return None;
    }
    let mut out = vec![0u8; wire::HEADER];
    out[0] = packet[0];
    out[1] = packet[1];
    // QR=1, keep opcode and RD.
    out[2] = 0x80 | (packet[2] & 0x79);
    out[3] = ResponseCode::FormErr.low();
    Some(out)
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;
    use hickory_proto::rr::{Name, RecordType};

    use super::*;

    fn query(name: &str, edns: Option<(u16, u8)>) -> Message {
        let mut m = Message::query();
        m.metadata.id = 0x4242;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if let Some((payload, version)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_version(version);
            m.set_edns(e);
        }
        m
    }

    fn parse(bytes: &[u8], transport: Transport) -> Result<Request<'_>, Rejected> {
        Request::parse(bytes, transport, &Metrics::default())
    }

    fn rejected(bytes: &[u8]) -> Option<Reply> {
        match parse(bytes, Transport::Udp) {
            Ok(r) => panic!("accepted {r:?}"),
            Err(Rejected::Reply(reply)) => Some(reply),
            Err(Rejected::Drop) => None,
        }
    }

    #[test]
    fn a_plain_query_is_read_with_its_size_limit() {
        for (edns, transport, size) in [
            (None, Transport::Udp, 512),
            (Some((4096, 0)), Transport::Udp, 1232),
            (Some((100, 0)), Transport::Udp, 512),
            (Some((800, 0)), Transport::Udp, 800),
            (None, Transport::Tcp, 65535),
            (Some((800, 0)), Transport::Tcp, 65535),
        ] {
            let bytes = query("WWW.Example.com.", edns).to_vec().unwrap();
            let r = parse(&bytes, transport).unwrap();
            assert_eq!(r.max_size, size, "{edns:?} {transport:?}");
            assert_eq!(r.question.name_lower, b"www.example.com.");
            assert!(wire::plain_name(&bytes, &r.question));
            assert_eq!(r.question.qtype, 1);
            assert_eq!(r.edns.present, edns.is_some());
            assert!(matches!(r.packet, Cow::Borrowed(_)));
            assert_eq!(r.clone().into_owned().bytes(), &bytes[..]);
        }
    }

    #[test]
    fn what_is_no_plain_query_gets_its_error_or_nothing() {
        // EDNS version 1: BADVERS, an extended code (in the OPT record, not the header).
        let badvers = rejected(&query("a.example.", Some((1232, 1))).to_vec().unwrap()).unwrap();
        assert_eq!(badvers.rcode, 16);
        assert_eq!(badvers.path, Path::RefusedOrError);
        let m = Message::from_vec(&badvers.bytes).unwrap();
        assert_eq!(
            u16::from(m.metadata.response_code),
            16,
            "BADVERS (alias BADSIG)"
        );
        assert!(m.edns.is_some());
        // Another opcode: NOTIMP.
        let mut notify = query("a.example.", None);
        notify.metadata.op_code = OpCode::Notify;
        assert_eq!(rejected(&notify.to_vec().unwrap()).unwrap().rcode, 4);
        // Two questions: FORMERR with both echoed.
        let mut two = query("a.example.", None);
        two.add_query(Query::query(
            Name::from_ascii("b.example.").unwrap(),
            RecordType::A,
        ));
        let formerr = rejected(&two.to_vec().unwrap()).unwrap();
        assert_eq!((formerr.rcode, formerr.qtype), (1, None));
        assert_eq!(Message::from_vec(&formerr.bytes).unwrap().queries.len(), 2);
        // Garbage with a header: FORMERR from the header alone; a response or a stub: nothing.
        let mut garbage = vec![0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        garbage.extend_from_slice(&[0x3f, 1, 2]);
        let from_header = rejected(&garbage).unwrap();
        assert_eq!(from_header.bytes[..4], [0xab, 0xcd, 0x81, 1]);
        assert!(rejected(&[0u8; 5]).is_none());
        let mut response = query("a.example.", None);
        response.metadata.message_type = MessageType::Response;
        assert!(rejected(&response.to_vec().unwrap()).is_none());
    }

    #[test]
    fn an_odd_but_valid_query_is_read_like_a_plain_one() {
        // A record in the answer section of a query: not plain, but a query all the same.
        let mut m = query("a.example.", Some((4096, 0)));
        m.add_answer(hickory_proto::rr::Record::from_rdata(
            Name::from_ascii("a.example.").unwrap(),
            5,
            hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 1)),
        ));
        let bytes = m.to_vec().unwrap();
        assert!(Request::parse_plain(&bytes, Transport::Udp).is_none());
        let r = parse(&bytes, Transport::Udp).unwrap();
        assert_eq!(r.question.name_lower, b"a.example.");
        assert_eq!(r.max_size, 1232);
        assert!(r.edns.present);
    }

    #[test]
    fn error_answers_echo_the_request() {
        let mut m = query("Mixed.Example.", Some((4096, 0)));
        m.metadata.recursion_desired = true;
        m.metadata.checking_disabled = true;
        let bytes = m.to_vec().unwrap();
        let r = parse(&bytes, Transport::Udp).unwrap();
        let reply = r.error(ResponseCode::Refused, &Metrics::default()).unwrap();
        assert_eq!((reply.rcode, reply.qtype), (5, Some(1)));
        assert_eq!(reply.path, Path::RefusedOrError);
        let resp = Message::from_vec(&reply.bytes).unwrap();
        assert_eq!(resp.metadata.id, 0x4242);
        assert!(resp.metadata.recursion_desired && resp.metadata.checking_disabled);
        assert!(!resp.metadata.recursion_available && !resp.metadata.authoritative);
        assert_eq!(resp.queries, m.queries);
        assert_eq!(resp.edns.unwrap().max_payload(), OUR_UDP_PAYLOAD);
        assert!(resp.answers.is_empty());
    }
}
