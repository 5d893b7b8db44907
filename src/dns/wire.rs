//! Raw DNS message handling for forwarding: read and patch messages in place, so what passes
//! through is byte for byte what the upstream sent (every section, every record type, DNSSEC
//! records, unknown types), with only the ID, the question's letter case, flags the client
//! set, and counted-down TTLs changed.

/// Header length.
pub const HEADER: usize = 12;
const TYPE_OPT: u16 = 41;
const TYPE_SOA: u16 = 6;

/// Why a message could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ends inside a field.
    #[error("message truncated")]
    Truncated,
    /// A name is malformed (bad label type or pointer loop).
    #[error("malformed name")]
    BadName,
}

/// The big-endian u16 at `at`.
pub(super) fn u16_at(b: &[u8], at: usize) -> Result<u16, WireError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(WireError::Truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, WireError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(WireError::Truncated)
}

/// Skips a (possibly compressed) name starting at `at`; returns the offset after it.
fn skip_name(b: &[u8], mut at: usize) -> Result<usize, WireError> {
    loop {
        let len = *b.get(at).ok_or(WireError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => at += 1 + len as usize,
            0xc0 => {
                b.get(at + 1).ok_or(WireError::Truncated)?;
                return Ok(at + 2);
            }
            _ => return Err(WireError::BadName),
        }
    }
}

/// Reads the name at `at` (following compression pointers) as lowercase label bytes joined by
/// dots, for cache keys and snapshot lookups.
fn read_name_lower(b: &[u8], mut at: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    let mut jumps = 0;
    loop {
        let len = *b.get(at).ok_or(WireError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(()),
            0x00 => {
                let label = b
                    .get(at + 1..at + 1 + len as usize)
                    .ok_or(WireError::Truncated)?;
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                out.push(b'.');
                at += 1 + len as usize;
            }
            0xc0 => {
                jumps += 1;
                if jumps > 64 {
                    return Err(WireError::BadName);
                }
                at = (u16_at(b, at)? & 0x3fff) as usize;
            }
            _ => return Err(WireError::BadName),
        }
    }
}

/// Whether the question name of `packet` (read as `q`) is plain: uncompressed, and made of
/// letters, digits, hyphens and underscores only, so that `q.name_lower` is an exact image of
/// it (no label holds a dot). Only the fast path asks, for names in the cluster domain, so
/// forwarded names never pay for the walk.
pub fn plain_name(packet: &[u8], q: &Question) -> bool {
    let name = &packet[HEADER..q.name_end];
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

/// Checks the name at `at` as a receiver following it would: labels within the message,
/// every compression pointer pointing past the header and before itself, at most 255 bytes of
/// name. Returns the offset after the name as written at `at`. A pointer loop or a pointer
/// outside the message is `BadName`.
fn check_name(b: &[u8], at: usize) -> Result<usize, WireError> {
    let mut pos = at;
    let mut end = None;
    let mut len = 0usize;
    let mut jumps = 0;
    loop {
        let l = *b.get(pos).ok_or(WireError::Truncated)?;
        match l & 0xc0 {
            0x00 if l == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                len += 1 + l as usize;
                if len > 255 {
                    return Err(WireError::BadName);
                }
                if pos + 1 + l as usize > b.len() {
                    return Err(WireError::Truncated);
                }
                pos += 1 + l as usize;
            }
            0xc0 => {
                let target = (u16_at(b, pos)? & 0x3fff) as usize;
                jumps += 1;
                if target >= pos || target < HEADER || jumps > 127 {
                    return Err(WireError::BadName);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(WireError::BadName),
        }
    }
}

/// Checks the names inside a record's data (`rdata..end`) for the types whose data holds
/// names (RFC 1035 and later: NS, CNAME, SOA, PTR, MX, SRV, NAPTR, DNAME, RRSIG, NSEC...).
fn check_rdata_names(b: &[u8], rtype: u16, rdata: usize, end: usize) -> Result<(), WireError> {
    let name = |at: usize| -> Result<usize, WireError> {
        if at > end {
            return Err(WireError::BadName);
        }
        let e = check_name(b, at)?;
        if e > end {
            return Err(WireError::BadName);
        }
        Ok(e)
    };
    match rtype {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME, NSEC (next name first)
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 | 47 => name(rdata).map(drop),
        // SOA: MNAME, RNAME, then five 32-bit fields.
        6 => {
            let e = name(name(rdata)?)?;
            if e + 20 > end {
                return Err(WireError::BadName);
            }
            Ok(())
        }
        // MINFO, RP: two names.
        14 | 17 => name(name(rdata)?).map(drop),
        // MX, AFSDB, RT, KX: preference then a name.
        15 | 18 | 21 | 36 => name(rdata + 2).map(drop),
        // PX: preference then two names.
        26 => name(name(rdata + 2)?).map(drop),
        // SRV: priority, weight, port, target.
        33 => name(rdata + 6).map(drop),
        // NAPTR: order, preference, three character-strings, replacement.
        35 => {
            let mut at = rdata + 4;
            for _ in 0..3 {
                let l = *b.get(at).ok_or(WireError::Truncated)? as usize;
                at += 1 + l;
            }
            name(at).map(drop)
        }
        // RRSIG: 18 bytes of fields, then the signer's name (opaque data shorter than that
        // holds no name to follow).
        46 if rdata + 18 < end => name(rdata + 18).map(drop),
        _ => Ok(()),
    }
}

/// Makes an upstream answer safe to relay and cache: every name (question, owners, names in
/// record data) must be well formed with no compression loop, else `BadName`; TTLs with the top
/// bit set are read as 0 (RFC 2181 section 8) and rewritten so.
pub fn sanitize(b: &mut [u8]) -> Result<(), WireError> {
    let qd = u16_at(b, 4)?;
    let mut at = HEADER;
    for _ in 0..qd {
        at = check_name(b, at)? + 4;
    }
    if at > b.len() {
        return Err(WireError::Truncated);
    }
    let total = u16_at(b, 6)? as usize + u16_at(b, 8)? as usize + u16_at(b, 10)? as usize;
    for _ in 0..total {
        at = check_name(b, at)?;
        let rtype = u16_at(b, at)?;
        let ttl = u32_at(b, at + 4)?;
        let rdlen = u16_at(b, at + 8)? as usize;
        let rdata = at + 10;
        let end = rdata + rdlen;
        if end > b.len() {
            return Err(WireError::Truncated);
        }
        if rtype != TYPE_OPT && ttl & 0x8000_0000 != 0 {
            b[at + 4..at + 8].fill(0);
        }
        check_rdata_names(b, rtype, rdata, end)?;
        at = end;
    }
    Ok(())
}

/// The message ID.
pub fn id(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Sets the message ID.
pub fn set_id(b: &mut [u8], id: u16) {
    b[..2].copy_from_slice(&id.to_be_bytes());
}

/// The response code (low four bits).
pub fn rcode(b: &[u8]) -> u8 {
    b[3] & 0x0f
}

/// Whether TC is set.
pub fn truncated(b: &[u8]) -> bool {
    b[2] & 0x02 != 0
}

/// Makes `answer`, a stored answer, the answer to `query` but for its ID: the query's RD and
/// CD bits, and its question's spelling when the answer's question name (ending at
/// `answer_name_end`) ends where the query's does (at `query_name_end`).
pub fn address_to(
    query: &[u8],
    query_name_end: usize,
    answer: &mut [u8],
    answer_name_end: Option<usize>,
) {
    copy_rd_cd(query, answer);
    if answer_name_end == Some(query_name_end) {
        answer[HEADER..query_name_end].copy_from_slice(&query[HEADER..query_name_end]);
    }
}

/// Sets the RD and CD bits to the client's.
pub fn copy_rd_cd(from: &[u8], to: &mut [u8]) {
    to[2] = (to[2] & !0x01) | (from[2] & 0x01);
    to[3] = (to[3] & !0x10) | (from[3] & 0x10);
}

/// The question of a query: where its name lies, and its type and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Byte range of the uncompressed question name, right after the header.
    pub name_end: usize,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// Lowercase name text (`example.com.`), for cache keys and snapshot lookups.
    pub name_lower: Vec<u8>,
}

/// Whether the lowercase name text `name` (as in `Question::name_lower`) is `zone` (spelled
/// the same way) or below it: a suffix that starts at a label boundary.
pub fn in_zone(name: &[u8], zone: &[u8]) -> bool {
    zone == b"."
        || name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name[name.len() - zone.len() - 1] == b'.')
}

/// Reads the single question of a message.
pub fn question(b: &[u8]) -> Result<Question, WireError> {
    if b.len() < HEADER || u16_at(b, 4)? != 1 {
        return Err(WireError::Truncated);
    }
    let name_end = skip_name(b, HEADER)?;
    let mut name_lower = Vec::with_capacity(name_end - HEADER);
    read_name_lower(b, HEADER, &mut name_lower)?;
    if name_lower.is_empty() {
        name_lower.push(b'.');
    }
    Ok(Question {
        name_end,
        qtype: u16_at(b, name_end)?,
        qclass: u16_at(b, name_end + 2)?,
        name_lower,
    })
}

/// Where the name of a message's single question ends ([`Question::name_end`]), read without
/// building its text; `None` unless there is exactly one whole question.
pub fn question_name_end(b: &[u8]) -> Option<usize> {
    if b.len() < HEADER || u16_at(b, 4).ok()? != 1 {
        return None;
    }
    let name_end = skip_name(b, HEADER).ok()?;
    (name_end + 4 <= b.len()).then_some(name_end)
}

/// What the forwarder needs to know about a response's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Offsets of the TTL fields of every record except OPT.
    pub ttl_offsets: Vec<usize>,
    /// The smallest TTL among answer records, if any.
    pub min_answer_ttl: Option<u32>,
    /// The smallest TTL among all records except OPT, if any.
    pub min_ttl: Option<u32>,
    /// The SOA in the authority section, as (its TTL, its MINIMUM field).
    pub authority_soa: Option<(u32, u32)>,
    /// Number of answer records.
    pub answers: u16,
}

/// The section counts (answer, authority, additional) and the offset where the records start,
/// past the questions.
fn records_start(b: &[u8]) -> Result<(u16, u16, u16, usize), WireError> {
    let qd = u16_at(b, 4)?;
    let mut at = HEADER;
    for _ in 0..qd {
        at = skip_name(b, at)? + 4;
    }
    Ok((u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?, at))
}

/// Walks every record of a message.
pub fn layout(b: &[u8]) -> Result<Layout, WireError> {
    let (an, ns, ar, mut at) = records_start(b)?;
    let mut out = Layout {
        answers: an,
        ..Layout::default()
    };
    let total = an as usize + ns as usize + ar as usize;
    for i in 0..total {
        at = skip_name(b, at)?;
        let rtype = u16_at(b, at)?;
        let ttl = u32_at(b, at + 4)?;
        let rdlen = u16_at(b, at + 8)? as usize;
        let rdata = at + 10;
        if rdata + rdlen > b.len() {
            return Err(WireError::Truncated);
        }
        if rtype != TYPE_OPT {
            out.ttl_offsets.push(at + 4);
            out.min_ttl = Some(out.min_ttl.map_or(ttl, |m| m.min(ttl)));
            if i < an as usize {
                out.min_answer_ttl = Some(out.min_answer_ttl.map_or(ttl, |m| m.min(ttl)));
            }
            let in_authority = i >= an as usize && i < an as usize + ns as usize;
            if in_authority && rtype == TYPE_SOA && out.authority_soa.is_none() {
                // MINIMUM is the last 4 bytes of the SOA RDATA.
                if rdlen >= 4 {
                    out.authority_soa = Some((ttl, u32_at(b, rdata + rdlen - 4)?));
                }
            }
        }
        at = rdata + rdlen;
    }
    Ok(out)
}

/// Writes `ttl` into every TTL field listed in `offsets`.
pub fn set_ttls(b: &mut [u8], offsets: &[usize], ttl_for: impl Fn(u32) -> u32) {
    for &o in offsets {
        if let Ok(old) = u32_at(b, o) {
            b[o..o + 4].copy_from_slice(&ttl_for(old).to_be_bytes());
        }
    }
}

/// The client's EDNS information, read once per query: presence, version, UDP payload size, DO
/// bit, and where the OPT record's options are (for the loop marker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdnsInfo {
    /// An OPT record is present.
    pub present: bool,
    /// EDNS version (only 0 is served; others are answered BADVERS).
    pub version: u8,
    /// Advertised UDP payload size.
    pub payload: u16,
    /// DNSSEC OK.
    pub dnssec_ok: bool,
    /// Offset of the OPT record's RDLENGTH field.
    pub rdlen_at: usize,
}

/// Finds the OPT record in the additional section of a query.
pub fn edns(b: &[u8]) -> Result<EdnsInfo, WireError> {
    let (an, ns, ar, mut at) = records_start(b)?;
    for i in 0..(an as usize + ns as usize + ar as usize) {
        at = skip_name(b, at)?;
        let rtype = u16_at(b, at)?;
        let rdlen = u16_at(b, at + 8)? as usize;
        if rtype == TYPE_OPT && i >= (an + ns) as usize {
            return Ok(EdnsInfo {
                present: true,
                version: *b.get(at + 5).ok_or(WireError::Truncated)?,
                payload: u16_at(b, at + 2)?,
                dnssec_ok: u32_at(b, at + 4)? & 0x8000 != 0,
                rdlen_at: at + 8,
            });
        }
        at += 10 + rdlen;
        if at > b.len() {
            return Err(WireError::Truncated);
        }
    }
    Ok(EdnsInfo::default())
}

/// Whether the OPT record whose RDLENGTH is at `rdlen_at` carries option `code` with `value`.
pub fn has_option(b: &[u8], rdlen_at: usize, code: u16, value: &[u8]) -> bool {
    let Ok(rdlen) = u16_at(b, rdlen_at) else {
        return false;
    };
    let mut at = rdlen_at + 2;
    let end = at + rdlen as usize;
    while at + 4 <= end {
        let (Ok(c), Ok(l)) = (u16_at(b, at), u16_at(b, at + 2)) else {
            return false;
        };
        let data = at + 4;
        if c == code && b.get(data..data + l as usize) == Some(value) {
            return true;
        }
        at = data + l as usize;
    }
    false
}

/// Appends option `code`/`value` to the OPT record of `b` (which must be the last record, as
/// clients send it), or adds an OPT record carrying it when there is none.
pub fn append_option(b: &mut Vec<u8>, info: &EdnsInfo, code: u16, value: &[u8]) {
    let mut opt = Vec::with_capacity(4 + value.len());
    opt.extend_from_slice(&code.to_be_bytes());
    opt.extend_from_slice(&(value.len() as u16).to_be_bytes());
    opt.extend_from_slice(value);
    if info.present {
        let Ok(rdlen) = u16_at(b, info.rdlen_at) else {
            return;
        };
        let end = info.rdlen_at + 2 + rdlen as usize;
        if end != b.len() {
            // OPT not last: leave the message alone rather than risk corrupting it.
            return;
        }
        let new_len = rdlen as usize + opt.len();
        b[info.rdlen_at..info.rdlen_at + 2].copy_from_slice(&(new_len as u16).to_be_bytes());
        b.extend_from_slice(&opt);
    } else {
        b.push(0); // root name
        b.extend_from_slice(&TYPE_OPT.to_be_bytes());
        b.extend_from_slice(&OUR_UDP_PAYLOAD.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&(opt.len() as u16).to_be_bytes());
        b.extend_from_slice(&opt);
        let ar = u16::from_be_bytes([b[10], b[11]]).saturating_add(1);
        b[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

/// End of an uncompressed name starting at `at` (no pointers), or `None`.
pub(super) fn plain_name_end(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *b.get(at)?;
        match len {
            0 => return Some(at + 1),
            1..=63 => at += 1 + len as usize,
            _ => return None,
        }
    }
}

/// The type of a message's single question, read without allocating.
pub fn query_type(b: &[u8]) -> Option<u16> {
    if b.len() < HEADER || u16_at(b, 4).ok()? != 1 {
        return None;
    }
    u16_at(b, plain_name_end(b, HEADER)?).ok()
}

/// A response with the ID, opcode, RD, CD and question of `b` (a query, or a response being
/// replaced), no records, the given rcode, and TC when `tc`: what refused, rate-limited and
/// UDP ANY clients get. Never larger than `b`'s header and question, so it amplifies nothing.
/// `None` when `b` has no single uncompressed question.
pub fn empty_response(b: &[u8], rcode: u8, tc: bool) -> Option<Vec<u8>> {
    if b.len() < HEADER || u16_at(b, 4).ok()? != 1 {
        return None;
    }
    let end = plain_name_end(b, HEADER)? + 4;
    let mut out = b.get(..end)?.to_vec();
    out[2] = 0x80 | (b[2] & 0x79) | if tc { 0x02 } else { 0 };
    out[3] = (b[3] & 0x90) | (rcode & 0x0f);
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].fill(0);
    Some(out)
}

/// The UDP payload size our OPT records advertise, the largest UDP response we send, and the
/// largest we invite from upstreams: the DNS flag day 2020 value, which avoids IP fragmentation
/// on ordinary paths.
pub const OUR_UDP_PAYLOAD: u16 = 1232;

/// A truncated response to `query` (its question `q`, its EDNS `edns`): header and question,
/// TC set, no records but an OPT record when the query had one (RFC 6891 §6.1.1: a responder
/// that understands EDNS answers an EDNS query with one), its DO bit echoed.
pub fn truncated_response(query: &[u8], q: &Question, edns: &EdnsInfo, rcode: u8) -> Vec<u8> {
    let end = (q.name_end + 4).min(query.len());
    let mut out = query[..end].to_vec();
    out[2] = 0x80 | (query[2] & 0x79) | 0x02;
    out[3] = (query[3] & 0x10) | 0x80 | (rcode & 0x0f);
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].fill(0);
    if edns.present {
        out[10..12].copy_from_slice(&1u16.to_be_bytes());
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&OUR_UDP_PAYLOAD.to_be_bytes());
        let flags: u32 = if edns.dnssec_ok { 0x8000 } else { 0 };
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
    }
    out
}

/// A response to `query` with no records and the given rcode (the forwarder's SERVFAIL), with
/// an OPT record when the query had one.
pub fn error_response(
    query: &[u8],
    q: &Question,
    edns: &EdnsInfo,
    rcode: u8,
    recursion_available: bool,
) -> Vec<u8> {
    let mut out = truncated_response(query, q, edns, rcode);
    out[2] &= !0x02;
    out[3] = (query[3] & 0x10) | (rcode & 0x0f) | if recursion_available { 0x80 } else { 0 };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_membership_is_by_whole_labels() {
        assert!(in_zone(b"a.corp.example.", b"corp.example."));
        assert!(in_zone(b"corp.example.", b"corp.example."));
        assert!(!in_zone(b"xcorp.example.", b"corp.example."));
        assert!(!in_zone(b"example.", b"corp.example."));
        assert!(in_zone(b"anything.", b"."));
    }
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn response() -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.add_query(Query::query(
            Name::from_ascii("WwW.Example.com.").unwrap(),
            RecordType::A,
        ));
        let n = Name::from_ascii("www.example.com.").unwrap();
        m.add_answer(Record::from_rdata(
            n.clone(),
            300,
            RData::A(A::new(1, 2, 3, 4)),
        ));
        m.add_answer(Record::from_rdata(n, 120, RData::A(A::new(1, 2, 3, 5))));
        let zone = Name::from_ascii("example.com.").unwrap();
        m.add_authority(Record::from_rdata(
            zone.clone(),
            900,
            RData::SOA(SOA::new(zone.clone(), zone, 1, 2, 3, 4, 77)),
        ));
        m.set_edns(Edns::new());
        m.to_vec().unwrap()
    }

    #[test]
    fn walks_records_and_patches_ttls() {
        let mut b = response();
        let q = question(&b).unwrap();
        assert_eq!(q.name_lower, b"www.example.com.");
        assert_eq!(q.qtype, 1);
        assert_eq!(question_name_end(&b), Some(q.name_end));
        assert_eq!(question_name_end(&b[..q.name_end + 3]), None);
        let l = layout(&b).unwrap();
        assert_eq!(l.ttl_offsets.len(), 3, "OPT excluded");
        assert_eq!(l.min_answer_ttl, Some(120));
        assert_eq!(l.min_ttl, Some(120));
        assert_eq!(l.authority_soa, Some((900, 77)));
        set_ttls(&mut b, &l.ttl_offsets, |t| t - 100);
        let m = Message::from_vec(&b).unwrap();
        let ttls: Vec<u32> = m.answers.iter().map(|r| r.ttl).collect();
        assert_eq!(ttls, [200, 20]);
        assert_eq!(m.authorities[0].ttl, 800);
    }

    #[test]
    fn question_names_are_read_once_and_told_plain_or_not() {
        let packet = |name: &[u8]| {
            let mut b = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            b.extend_from_slice(name);
            b.extend_from_slice(&[0, 1, 0, 1]);
            b
        };
        let plain = |b: &[u8]| plain_name(b, &question(b).unwrap());
        let web = packet(b"\x03Web\x08marathon\x05mesos\x00");
        assert_eq!(question(&web).unwrap().name_lower, b"web.marathon.mesos.");
        assert!(plain(&web));
        assert!(plain(&packet(b"\x04_web\x04_tcp\x03a-b\x00")));
        assert!(plain(&packet(b"\x00")));
        for odd in [
            &b"\x03a*b\x05mesos\x00"[..],
            b"\x07x.mesos\x00",
            b"\x03a b\x00",
        ] {
            assert!(!plain(&packet(odd)), "{odd:?}");
        }
        // A compressed question name: read through the pointer, not plain.
        let mut b = vec![
            0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0xc0, 20, 0, 1, 0, 1,
        ];
        b.extend_from_slice(b"\x05mesos\x00");
        assert_eq!(question(&b).unwrap().name_lower, b"a.mesos.");
        assert!(!plain(&b));
    }

    #[test]
    fn edns_version_and_payload_are_read() {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        let mut e = Edns::new();
        e.set_version(1);
        e.set_max_payload(4000);
        e.set_dnssec_ok(true);
        m.set_edns(e);
        let info = edns(&m.to_vec().unwrap()).unwrap();
        assert_eq!(
            (info.present, info.version, info.payload, info.dnssec_ok),
            (true, 1, 4000, true)
        );
    }

    #[test]
    fn edns_options_round_trip() {
        let mut b = response();
        let info = edns(&b).unwrap();
        assert!(info.present);
        assert!(!has_option(&b, info.rdlen_at, 65001, b"marker"));
        append_option(&mut b, &info, 65001, b"marker");
        let info = edns(&b).unwrap();
        assert!(has_option(&b, info.rdlen_at, 65001, b"marker"));
        assert!(Message::from_vec(&b).is_ok());

        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        let mut plain = m.to_vec().unwrap();
        let info = edns(&plain).unwrap();
        assert!(!info.present);
        append_option(&mut plain, &info, 65001, b"x");
        let info = edns(&plain).unwrap();
        assert!(info.present && has_option(&plain, info.rdlen_at, 65001, b"x"));
        assert!(Message::from_vec(&plain).unwrap().edns.is_some());
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let b = response();
        for cut in 0..b.len() {
            let _ = layout(&b[..cut]);
            let _ = edns(&b[..cut]);
            let _ = question(&b[..cut]);
        }
        // A pointer loop in the question name.
        let mut lp = b[..HEADER].to_vec();
        lp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(question(&lp), Err(WireError::BadName));
        for cut in 0..b.len() {
            let _ = sanitize(&mut b[..cut].to_vec());
        }
    }

    /// The response with its first answer's owner (a pointer to the question) replaced by
    /// `owner`, and the answer records' data replaced by `rdata` of type `rtype` when given.
    fn with_answer(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let b = response();
        let q = question(&b).unwrap();
        let mut out = b[..q.name_end + 4].to_vec();
        out[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
        out.extend_from_slice(owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 1, 44]);
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        out
    }

    #[test]
    fn sanitize_accepts_real_answers_and_zeroes_top_bit_ttls() {
        let mut b = response();
        let before = b.clone();
        sanitize(&mut b).unwrap();
        assert_eq!(b, before, "a clean answer is left alone");
        // CNAME to a compressed name pointing at the question.
        let mut ok = with_answer(&[0xc0, 12], 5, &[5, b'a', b'l', b'i', b'a', b's', 0xc0, 16]);
        sanitize(&mut ok).unwrap();
        let mut top = with_answer(&[0xc0, 12], 1, &[192, 0, 2, 1]);
        let ttl_at = top.len() - 10;
        top[ttl_at..ttl_at + 4].copy_from_slice(&0x8000_0001u32.to_be_bytes());
        sanitize(&mut top).unwrap();
        assert_eq!(&top[ttl_at..ttl_at + 4], &[0, 0, 0, 0]);
        assert_eq!(layout(&top).unwrap().min_answer_ttl, Some(0));
    }

    #[test]
    fn whatever_sanitize_passes_walks_with_sane_ttls() {
        use rand::Rng;
        let mut rng = rand::rng();
        let base = with_answer(&[0xc0, 12], 5, &[5, b'a', b'l', b'i', b'a', b's', 0xc0, 16]);
        for _ in 0..20_000 {
            let mut m = base.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(2..m.len());
                m[i] = rng.random();
            }
            if sanitize(&mut m).is_ok() {
                let l = layout(&m).expect("sanitized answers walk");
                assert!(l.ttl_offsets.iter().all(|&o| m[o] & 0x80 == 0));
            }
            let _ = empty_response(&m, 5, true).map(|r| assert!(r.len() <= m.len()));
        }
    }

    #[test]
    fn sanitize_rejects_pointer_loops_anywhere() {
        let b = response();
        let at = question(&b).unwrap().name_end + 4;
        // Owner: a pointer to itself.
        let mut own = with_answer(&[0xc0, at as u8], 1, &[192, 0, 2, 1]);
        assert_eq!(sanitize(&mut own), Err(WireError::BadName));
        // Owner: a forward pointer.
        let mut fwd = with_answer(&[0xc0, 0xff], 1, &[192, 0, 2, 1]);
        assert_eq!(sanitize(&mut fwd), Err(WireError::BadName));
        // CNAME data: a label, then a pointer back to that label (a loop through labels).
        let rdata_at = (at + 12) as u8;
        let mut cname = with_answer(&[0xc0, 12], 5, &[1, b'x', 0xc0, rdata_at]);
        assert_eq!(sanitize(&mut cname), Err(WireError::BadName));
        // MX, SRV, SOA and NS data pointing at themselves.
        for (rtype, prefix) in [(15u16, 2usize), (33, 6), (2, 0), (6, 0), (12, 0)] {
            let mut rdata = vec![0u8; prefix];
            rdata.extend_from_slice(&[0xc0, rdata_at + prefix as u8]);
            let mut m = with_answer(&[0xc0, 12], rtype, &rdata);
            assert_eq!(sanitize(&mut m), Err(WireError::BadName), "type {rtype}");
        }
        // A name running past its record's data.
        let mut long = with_answer(&[0xc0, 12], 5, &[3, b'a', b'b']);
        assert!(sanitize(&mut long).is_err());
    }

    #[test]
    fn made_up_answers_to_edns_queries_carry_opt() {
        let mut m = Message::query();
        m.add_query(Query::query(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
        ));
        let plain = m.to_vec().unwrap();
        let mut e = Edns::new();
        e.set_max_payload(4096);
        e.set_dnssec_ok(true);
        m.set_edns(e);
        let with_opt = m.to_vec().unwrap();
        for (query, opt) in [(&plain, false), (&with_opt, true)] {
            let q = question(query).unwrap();
            let e = edns(query).unwrap();
            for resp in [
                truncated_response(query, &q, &e, 0),
                error_response(query, &q, &e, 2, true),
            ] {
                let parsed = Message::from_vec(&resp).unwrap();
                assert_eq!(parsed.edns.is_some(), opt, "OPT iff the query had one");
                if let Some(e) = parsed.edns {
                    assert!(e.flags().dnssec_ok, "DO echoed");
                    assert_eq!(e.max_payload(), 1232);
                }
            }
        }
    }
}
