//! A UDP reader thread's own copies of the cluster answers it wrote last, each served again
//! with the records in a fresh random order.
//!
//! Writing a cluster answer walks the snapshot: the group of the name, its bucket, the name
//! index, the records, and for SRV each target's name and addresses. Between two wake-ups of
//! the reader the kernel's network path pushes most of that out of the CPU's caches, so an
//! answer paid for a dozen cache misses more than for the work itself. The names a host asks
//! for over and over are few, so each reader thread keeps the answers it wrote in a table of
//! its own, keyed by the query as it came (all of it but the ID: the question as spelled,
//! the flags, the EDNS record; a fast-path answer depends on nothing else), and serves a held
//! answer by one hash, one comparison and one copy.
//!
//! Cluster answers are shuffled on every query (Mesos-DNS does, and clients spread over a
//! name's tasks by it), so a held answer is stored with where its records lie and is written
//! out in a new random order each time, exactly as the fast path would have written that
//! order: the address records of an SRV answer's targets follow in the order the targets
//! first appear, each pointing at its target's name where it now lies. Only fast-path answers
//! of that known shape are held; anything else is answered as before.
//!
//! A held answer is valid for the snapshot it was written from: the table remembers that
//! snapshot (weakly, so an old snapshot's records are not kept alive) and empties itself when
//! a new one is served. It holds at most [`MAX_HELD_BYTES`] and empties itself when full.
//! It is a hash table rather than a few fixed slots per hash (as the forwarded answers' are):
//! with every name of a cluster asked about evenly, as in the peers bench, fixed slots kept
//! pushing each other out and cost more than they saved.

use std::sync::{Arc, Weak};

use hashbrown::hash_table::{Entry, HashTable};

use super::fast::shuffled;
use super::request::Reply;
use super::wire::{plain_name_end, u16_at, HEADER};
use crate::metrics::Path;
use crate::records::snapshot::Snapshot;

/// Bytes held per reader thread at most, answers, queries and bookkeeping together: room
/// for every name of a cluster of a few thousand tasks (a held A answer with its query is
/// about 150 bytes, an SRV answer a few hundred).
pub const MAX_HELD_BYTES: usize = 2 << 20;

/// Longer answers are not held.
pub const MAX_ANSWER_BYTES: usize = 512;

/// Answers to longer queries (large EDNS options) are not held.
const MAX_QUERY_BYTES: usize = 512;

/// Answers with more records than this are not held.
const MAX_RECORDS: usize = 32;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;

/// The compression pointer to the question name (right after the header): the owner of every
/// answer record the fast path writes.
const QNAME_POINTER: [u8; 2] = [0xc0, HEADER as u8];

/// Where an SRV record's target name starts in the record: owner pointer, type, class, TTL,
/// RDLENGTH, then priority, weight and port.
const SRV_TARGET_AT: usize = 12 + 6;

/// How a held response is written out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// As it is: no two answer records to put in another order.
    Fixed,
    /// `count` address records of `size` bytes each from `start`, in any order; the rest
    /// (an OPT record) after them.
    Addresses { start: u16, size: u16, count: u8 },
    /// SRV records from `start` to `tail` with their targets' addresses, as the layout after
    /// the response says (see [`srv_shape`]); the rest (an OPT record) from `tail`.
    Srv { start: u16, records: u8, tail: u16 },
}

struct Slot {
    hash: u64,
    /// The query without its ID, then the response, then for SRV its layout: per record its
    /// start, length and target number, per target the start and end of its addresses; each
    /// a little-endian u16.
    bytes: Box<[u8]>,
    key_len: u16,
    response_len: u16,
    shape: Shape,
    path: Path,
    rcode: u16,
    qtype: Option<u16>,
}

impl Slot {
    fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len as usize]
    }

    fn response(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..][..self.response_len as usize]
    }

    /// What holding it takes: its bytes, itself and its place in the table.
    fn cost(&self) -> usize {
        self.bytes.len() + std::mem::size_of::<Slot>() + 8
    }

    fn layout(&self, i: usize) -> usize {
        let at = self.key_len as usize + self.response_len as usize + 2 * i;
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize
    }
}

/// One reader thread's held cluster answers (see the module documentation).
#[derive(Default)]
pub struct HotCluster {
    table: HashTable<Slot>,
    hasher: ahash::RandomState,
    /// The snapshot the held answers were written from.
    snapshot: Weak<Snapshot>,
    /// What the held answers take ([`Slot::cost`]).
    held_bytes: usize,
}

impl HotCluster {
    /// The answer to `query` held from `snapshot`, with its ID and its records in a new
    /// random order.
    pub fn get(&mut self, query: &[u8], snapshot: &Arc<Snapshot>) -> Option<Reply> {
        let key = query.get(2..)?;
        self.follow(snapshot);
        let hash = self.hasher.hash_one(key);
        let slot = self.table.find(hash, |s| s.key() == key)?;
        let mut bytes = render(slot);
        bytes[..2].copy_from_slice(&query[..2]);
        Some(Reply {
            bytes,
            path: slot.path,
            rcode: slot.rcode,
            qtype: slot.qtype,
        })
    }

    /// Holds `reply`, the fast path's answer to `query` from `snapshot`, when its shape is
    /// one this table can shuffle.
    pub fn put(&mut self, query: &[u8], snapshot: &Arc<Snapshot>, reply: &Reply) {
        let (Some(key), Some(question_end)) = (query.get(2..), question_end(query)) else {
            return;
        };
        let response = &reply.bytes;
        if response.len() > MAX_ANSWER_BYTES || query.len() > MAX_QUERY_BYTES {
            return;
        }
        let Some((shape, layout)) = shape(response, question_end) else {
            return;
        };
        self.follow(snapshot);
        let hash = self.hasher.hash_one(key);
        let mut bytes = Vec::with_capacity(key.len() + response.len() + 2 * layout.len());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(response);
        for v in layout {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let slot = Slot {
            hash,
            bytes: bytes.into_boxed_slice(),
            key_len: key.len() as u16,
            response_len: response.len() as u16,
            shape,
            path: reply.path,
            rcode: reply.rcode,
            qtype: reply.qtype,
        };
        if self.held_bytes + slot.cost() > MAX_HELD_BYTES {
            self.table.clear();
            self.held_bytes = 0;
        }
        self.held_bytes += slot.cost();
        match self.table.entry(hash, |s| s.key() == key, |s| s.hash) {
            Entry::Occupied(mut held) => {
                self.held_bytes -= held.get().cost();
                *held.get_mut() = slot;
            }
            Entry::Vacant(room) => {
                room.insert(slot);
            }
        }
    }

    /// How many answers it holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// What the held answers take, in bytes (at most [`MAX_HELD_BYTES`]).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Whether it holds no answer.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Drops every held answer when `snapshot` is not the one they were written from. The
    /// weak reference keeps the old snapshot's allocation, so a new snapshot never lies at
    /// its address while it is remembered.
    fn follow(&mut self, snapshot: &Arc<Snapshot>) {
        if !std::ptr::eq(self.snapshot.as_ptr(), Arc::as_ptr(snapshot)) {
            self.snapshot = Arc::downgrade(snapshot);
            self.table.clear();
            self.held_bytes = 0;
        }
    }
}

/// Where the single, uncompressed question of `query` ends (after its type and class).
fn question_end(query: &[u8]) -> Option<usize> {
    super::wire::question_name_end(query).map(|end| end + 4)
}

/// One resource record at `at`: its type and total length.
fn record(b: &[u8], at: usize, owner_len: usize) -> Option<(u16, usize)> {
    let rtype = u16_at(b, at + owner_len).ok()?;
    let rdlen = u16_at(b, at + owner_len + 8).ok()? as usize;
    let len = owner_len + 10 + rdlen;
    (at + len <= b.len()).then_some((rtype, len))
}

/// Whether what is left of `b` from `at` is exactly `opt` OPT records (0 or 1).
fn ends_with_opt(b: &[u8], at: usize, opt: u16) -> bool {
    match opt {
        0 => at == b.len(),
        1 => {
            b.get(at) == Some(&0)
                && record(b, at, 1).is_some_and(|(t, len)| t == TYPE_OPT && at + len == b.len())
        }
        _ => false,
    }
}

/// How `response` (whose question ends at `question_end`) can be written out in another order,
/// and its layout for [`Shape::Srv`]; `None` for a shape this table does not hold.
fn shape(response: &[u8], question_end: usize) -> Option<(Shape, Vec<u16>)> {
    let answers = u16_at(response, 6).ok()?;
    let authority = u16_at(response, 8).ok()?;
    let additional = u16_at(response, 10).ok()?;
    if answers <= 1 {
        return Some((Shape::Fixed, Vec::new()));
    }
    if authority != 0 || answers as usize > MAX_RECORDS || question_end > response.len() {
        return None;
    }
    let start = question_end;
    let (rtype, size) = record(response, start, 2)?;
    match rtype {
        TYPE_A | TYPE_AAAA => {
            let mut at = start;
            for _ in 0..answers {
                if response.get(at..at + 2)? != QNAME_POINTER
                    || record(response, at, 2)? != (rtype, size)
                {
                    return None;
                }
                at += size;
            }
            ends_with_opt(response, at, additional).then_some((
                Shape::Addresses {
                    start: start as u16,
                    size: size as u16,
                    count: answers as u8,
                },
                Vec::new(),
            ))
        }
        TYPE_SRV => srv_shape(response, start, answers, additional),
        _ => None,
    }
}

/// The layout of an SRV answer as the fast path writes it: the records, each owned by the
/// question name with an uncompressed target; then for each distinct target, in the order
/// the records first name it, its address records, owned by a pointer to that first naming;
/// then at most an OPT record.
fn srv_shape(
    response: &[u8],
    start: usize,
    answers: u16,
    additional: u16,
) -> Option<(Shape, Vec<u16>)> {
    let mut records = Vec::with_capacity(answers as usize);
    // Per distinct target: its name's bytes and where the first record naming it puts it.
    let mut targets: Vec<(&[u8], usize)> = Vec::new();
    let mut at = start;
    for _ in 0..answers {
        let (rtype, len) = record(response, at, 2)?;
        if rtype != TYPE_SRV || response.get(at..at + 2)? != QNAME_POINTER {
            return None;
        }
        let name = response.get(at + SRV_TARGET_AT..at + len)?;
        if plain_name_end(name, 0) != Some(name.len()) {
            return None;
        }
        let target = match targets.iter().position(|(n, _)| *n == name) {
            Some(t) => t,
            None => {
                targets.push((name, at + SRV_TARGET_AT));
                targets.len() - 1
            }
        };
        records.push((at, len, target));
        at += len;
    }
    // Each target's addresses, in one run, the runs in the targets' order (some may be empty).
    let mut blocks = vec![(0usize, 0usize); targets.len()];
    let mut current: Option<usize> = None;
    let mut left = additional;
    while left > 0 && response.get(at) != Some(&0) {
        let pointer = u16_at(response, at).ok()?;
        let (rtype, len) = record(response, at, 2)?;
        if pointer & 0xc000 != 0xc000 || !matches!(rtype, TYPE_A | TYPE_AAAA) {
            return None;
        }
        let named = (pointer & 0x3fff) as usize;
        let t = targets.iter().position(|&(_, first)| first == named)?;
        if current != Some(t) {
            if current.is_some_and(|c| t <= c) {
                return None;
            }
            blocks[t].0 = at;
            current = Some(t);
        }
        at += len;
        blocks[t].1 = at;
        left -= 1;
    }
    if !ends_with_opt(response, at, left) {
        return None;
    }
    let tail = at;
    let mut layout = Vec::with_capacity(3 * records.len() + 2 * blocks.len());
    for (rs, len, t) in records {
        layout.extend([rs as u16, len as u16, t as u16]);
    }
    for (bs, be) in blocks {
        layout.extend([bs as u16, be as u16]);
    }
    Some((
        Shape::Srv {
            start: start as u16,
            records: answers as u8,
            tail: tail as u16,
        },
        layout,
    ))
}

/// A held response with its records in a new random order.
fn render(slot: &Slot) -> Vec<u8> {
    let response = slot.response();
    match slot.shape {
        Shape::Fixed => response.to_vec(),
        Shape::Addresses { start, size, count } => {
            let (start, size, count) = (start as usize, size as usize, count as usize);
            let mut out = Vec::with_capacity(response.len());
            out.extend_from_slice(&response[..start]);
            let order = shuffled(count).expect("held answers are short");
            for &i in &order[..count] {
                let at = start + i as usize * size;
                out.extend_from_slice(&response[at..at + size]);
            }
            out.extend_from_slice(&response[start + count * size..]);
            out
        }
        Shape::Srv {
            start,
            records,
            tail,
        } => {
            let records = records as usize;
            let mut out = Vec::with_capacity(response.len());
            out.extend_from_slice(&response[..start as usize]);
            // Per target, where its name now lies; and the targets in the order named.
            let mut named_at = [0u16; MAX_RECORDS];
            let mut named = [0u8; MAX_RECORDS];
            let mut n = 0;
            let order = shuffled(records).expect("held answers are short");
            for &i in &order[..records] {
                let i = i as usize;
                let (at, len, t) = (
                    slot.layout(3 * i),
                    slot.layout(3 * i + 1),
                    slot.layout(3 * i + 2),
                );
                if named_at[t] == 0 {
                    named_at[t] = (out.len() + SRV_TARGET_AT) as u16;
                    named[n] = t as u8;
                    n += 1;
                }
                out.extend_from_slice(&response[at..at + len]);
            }
            let blocks = 3 * records;
            for &t in &named[..n] {
                let t = t as usize;
                let (mut at, end) = (slot.layout(blocks + 2 * t), slot.layout(blocks + 2 * t + 1));
                let pointer = (0xc000 | named_at[t]).to_be_bytes();
                while at < end {
                    let len =
                        12 + u16::from_be_bytes([response[at + 10], response[at + 11]]) as usize;
                    out.extend_from_slice(&pointer);
                    out.extend_from_slice(&response[at + 2..at + len]);
                    at += len;
                }
            }
            out.extend_from_slice(&response[tail as usize..]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(serial: u32) -> Arc<Snapshot> {
        Arc::new(crate::records::demo_snapshot(serial))
    }

    /// A query for `web.mesos` A with ID 1 and RD set.
    fn query() -> Vec<u8> {
        let mut q = vec![0, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03web\x05mesos\x00\x00\x01\x00\x01");
        q
    }

    /// A response to `query()` with `records` (each owner, type and RDATA) in its answers.
    fn response(records: &[(&[u8], u16, &[u8])]) -> Reply {
        let mut r = query();
        r[2] = 0x85;
        r[7] = records.len() as u8;
        for (owner, rtype, rdata) in records {
            r.extend_from_slice(owner);
            r.extend_from_slice(&rtype.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(rdata);
        }
        Reply {
            bytes: r,
            path: Path::Cluster,
            rcode: 0,
            qtype: Some(TYPE_A),
        }
    }

    #[test]
    fn a_query_is_held_under_its_bytes_but_for_the_id() {
        let snap = snapshot(1);
        let mut hot = HotCluster::default();
        let q = query();
        hot.put(
            &q,
            &snap,
            &response(&[(&QNAME_POINTER, TYPE_A, &[10, 0, 0, 1])]),
        );
        let mut other_id = q.clone();
        other_id[..2].copy_from_slice(&[0xab, 0xcd]);
        let held = hot.get(&other_id, &snap).expect("held");
        assert_eq!(held.bytes[..2], [0xab, 0xcd]);
        assert_eq!(
            held.bytes[2..],
            response(&[(&QNAME_POINTER, TYPE_A, &[10, 0, 0, 1])]).bytes[2..]
        );
        // Another flag or another spelling of the name is another query.
        let mut no_rd = q.clone();
        no_rd[2] = 0;
        let mut upper = q.clone();
        upper[13] = b'W';
        for different in [no_rd, upper] {
            assert!(hot.get(&different, &snap).is_none());
        }
    }

    #[test]
    fn a_new_snapshot_empties_the_table() {
        let (old, new) = (snapshot(1), snapshot(2));
        let mut hot = HotCluster::default();
        let q = query();
        let reply = response(&[(&QNAME_POINTER, TYPE_A, &[10, 0, 0, 1])]);
        hot.put(&q, &old, &reply);
        assert!(hot.get(&q, &old).is_some());
        assert!(hot.get(&q, &new).is_none(), "an answer of another snapshot");
        hot.put(&q, &new, &reply);
        assert!(hot.get(&q, &new).is_some());
        assert!(hot.get(&q, &old).is_none(), "the old answers are gone");
        assert_eq!(hot.len(), 0);
    }

    #[test]
    fn addresses_come_in_every_order_and_nothing_else_moves() {
        let snap = snapshot(1);
        let mut hot = HotCluster::default();
        let q = query();
        let ips: [&[u8]; 3] = [&[10, 0, 0, 1], &[10, 0, 0, 2], &[10, 0, 0, 3]];
        let reply = response(&ips.map(|ip| (&QNAME_POINTER[..], TYPE_A, ip)));
        hot.put(&q, &snap, &reply);
        let start = q.len();
        let mut orders = std::collections::HashSet::new();
        for _ in 0..500 {
            let held = hot.get(&q, &snap).unwrap().bytes;
            assert_eq!(held[..start], reply.bytes[..start]);
            let mut records: Vec<&[u8]> = held[start..].chunks(16).collect();
            orders.insert(records.iter().map(|r| r[15]).collect::<Vec<_>>());
            records.sort();
            assert_eq!(records.concat(), reply.bytes[start..]);
        }
        assert_eq!(orders.len(), 6);
    }

    #[test]
    fn a_full_table_empties_itself_and_holds_on() {
        let snap = snapshot(1);
        let mut hot = HotCluster::default();
        let reply = response(&[(&QNAME_POINTER, TYPE_A, &[10, 0, 0, 1])]);
        let mut emptied = 0;
        for i in 0..20_000u32 {
            let mut q = query();
            q[13..16].copy_from_slice(&[
                b'a' + (i % 26) as u8,
                b'a' + (i / 26 % 26) as u8,
                b'a' + (i / 676 % 26) as u8,
            ]);
            let before = hot.len();
            hot.put(&q, &snap, &reply);
            assert!(hot.held_bytes() <= MAX_HELD_BYTES);
            assert!(hot.get(&q, &snap).is_some(), "the newest is held");
            emptied += usize::from(hot.len() <= before);
        }
        assert!(emptied > 0, "20,000 answers fit in {MAX_HELD_BYTES} bytes");
        // The same query again replaces its answer rather than adding one.
        let mut hot = HotCluster::default();
        hot.put(&query(), &snap, &reply);
        let once = (hot.len(), hot.held_bytes());
        hot.put(&query(), &snap, &reply);
        assert_eq!((hot.len(), hot.held_bytes()), once);
        assert_eq!(once.0, 1);
    }

    #[test]
    fn shapes_it_cannot_reorder_are_not_held() {
        let snap = snapshot(1);
        let q = query();
        let a: &[u8] = &[10, 0, 0, 1];
        let long = [7u8; MAX_ANSWER_BYTES];
        let cases = [
            // Two types in one answer.
            response(&[
                (&QNAME_POINTER, TYPE_A, a),
                (&QNAME_POINTER, TYPE_AAAA, &[0; 16]),
            ]),
            // An owner that is not the question name's pointer.
            response(&[
                (&QNAME_POINTER, TYPE_A, a),
                (b"\x03web\x05mesos\x00", TYPE_A, a),
            ]),
            // A type the fast path does not shuffle.
            response(&[
                (&QNAME_POINTER, 16, b"\x01a"),
                (&QNAME_POINTER, 16, b"\x01b"),
            ]),
            // Longer than is held.
            response(&[(&QNAME_POINTER, 16, &long)]),
        ];
        for reply in cases {
            let mut hot = HotCluster::default();
            hot.put(&q, &snap, &reply);
            assert!(hot.get(&q, &snap).is_none(), "{:?}", reply.bytes);
        }
    }
}
