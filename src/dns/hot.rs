//! A UDP reader thread's own front to the answer cache: the answers it served last, held
//! ready to send and found before the query is parsed.
//!
//! A hit in moka walks its shared table and records the read for its eviction order, which
//! was half of the user-space time of a cache hit; parsing the query, the zone test and the
//! look at the snapshot's names outside the domain were much of the rest. The names a host
//! asks for over and over are few, so each reader thread keeps the answers it served from
//! moka in a small table of its own, keyed by the query as it came (all of it but the ID: the
//! question as spelled, the flags, the EDNS record), like its held cluster answers. A repeat
//! is answered by one walk over the question's labels, one hash, one comparison and one copy.
//!
//! moka stays the cache of record: answers come only from it, and every
//! [`RECHECK_EVERY`] hits a slot's query goes the whole way again, so moka still sees the name
//! as used (it is not evicted for looking idle) and a refreshed answer replaces the one held
//! here. A slot serves only until its entry's prefetch point (or expiry when it will not be
//! prefetched); later queries go to moka, which serves stale answers and starts refreshes as
//! before. Which names are forwarded at all depends on the snapshot (reverse names of cluster
//! addresses, static records), so the table is valid for one snapshot and empties itself when
//! another is served. It is a hash table bounded in entries, emptied when full, like the held
//! cluster answers: a first version with two fixed slots per hash left a few percent of the
//! bench's thousand names without a slot, and those paid a moka lookup on every query.
//!
//! A held answer is already the answer to its query: RD and CD bits and question spelling
//! copied, TTLs counted down. TTLs change once a second, so they are written again only when
//! the entry has aged another second; a hit touches the slot and its one allocation, and the
//! entry itself only once a second.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hashbrown::hash_table::{Entry, HashTable};

use super::cache::Cached;
use super::request::{Reply, Request};
use super::wire;
use crate::metrics::Path;
use crate::records::snapshot::Snapshot;

/// Answers held per reader thread at most: room for the hot names of a busy host.
const MAX_HELD: usize = 4096;

/// Longer answers are not held. With [`MAX_HELD`] and [`MAX_QUERY_BYTES`] this bounds what the
/// table holds to about 4 MiB per UDP listener beside the entries (mostly moka's own, shared);
/// a hot name's answer and query are usually under 150 bytes.
pub const MAX_ANSWER_BYTES: usize = 512;

/// Answers to longer queries (large EDNS options) are not held.
const MAX_QUERY_BYTES: usize = 512;

/// A slot's hit after this many served from the slot goes to moka instead. A moka lookup
/// costs as much as some hundred hits from a slot (its shared table, and the reads it records
/// for its eviction order, replayed on the caller's thread), so moka sees a hot name about
/// once in this many hits: still often enough to keep it from looking idle.
pub(crate) const RECHECK_EVERY: u32 = 256;

/// Writes an entry's TTLs into a copy of its answer, counted down by its age in whole seconds:
/// the forwarder's rule, which the slots apply when they write an answer again.
pub trait CountDown: Fn(&Cached, u32, &mut [u8]) {}

impl<F: Fn(&Cached, u32, &mut [u8])> CountDown for F {}

struct Slot {
    hash: u64,
    /// The query the answer is held for (its ID is not part of the key), then the answer.
    held: Box<[u8]>,
    query_len: u16,
    /// Where the query's question name ends.
    name_end: u16,
    /// Where the entry's question name ends (`wire::question_name_end`).
    answer_name_end: Option<usize>,
    qtype: u16,
    rcode: u16,
    /// What the answer was written from, to write its TTLs again.
    entry: Arc<Cached>,
    /// The answer's TTLs are a second too high from this on.
    aged_at: Instant,
    /// Served from here while `now` is before this.
    until: Instant,
    /// Hits since moka last saw the name.
    served: u32,
}

impl Slot {
    fn key(&self) -> &[u8] {
        &self.held[2..self.query_len as usize]
    }

    /// Writes the answer for `now` from the entry: its TTLs counted down by its age then,
    /// addressed to the query.
    fn age(&mut self, now: Instant, count_down: &impl CountDown) {
        let age = self.entry.age(now).as_secs();
        let (query, answer) = self.held.split_at_mut(self.query_len as usize);
        answer.copy_from_slice(&self.entry.bytes);
        count_down(&self.entry, age.min(u32::MAX as u64) as u32, answer);
        wire::address_to(query, self.name_end as usize, answer, self.answer_name_end);
        self.aged_at = self.entry.stored + Duration::from_secs(age.saturating_add(1));
    }
}

/// One reader thread's hot answers (see the module documentation).
#[derive(Default)]
pub struct HotAnswers {
    table: HashTable<Slot>,
    hasher: ahash::RandomState,
    /// The snapshot in force when the held answers were served.
    snapshot: Weak<Snapshot>,
}

impl HotAnswers {
    /// Makes the table valid for `snapshot`, the one in force: emptied when it is not the one
    /// the held answers were served under.
    pub fn follow(&mut self, snapshot: &Arc<Snapshot>) {
        if Weak::as_ptr(&self.snapshot) == Arc::as_ptr(snapshot) {
            return;
        }
        self.table.clear();
        self.snapshot = Arc::downgrade(snapshot);
    }

    /// The answer held for `packet`, a query as it came, with its ID and its TTLs as
    /// `count_down` writes them at `now`, when it may be served from here at `now`: before
    /// the slot's limit, and not due to be seen by moka.
    pub fn get(
        &mut self,
        packet: &[u8],
        now: Instant,
        count_down: impl CountDown,
    ) -> Option<Reply> {
        if self.table.is_empty() {
            return None;
        }
        let key = packet.get(2..)?;
        let hash = self.hasher.hash_one(key);
        let slot = self.table.find_mut(hash, |s| s.key() == key)?;
        if now >= slot.until || slot.served >= RECHECK_EVERY {
            return None;
        }
        slot.served += 1;
        if now >= slot.aged_at {
            slot.age(now, &count_down);
        }
        let mut bytes = slot.held[slot.query_len as usize..].to_vec();
        bytes[..2].copy_from_slice(&packet[..2]);
        Some(Reply {
            bytes,
            path: Path::CacheHit,
            rcode: slot.rcode,
            qtype: Some(slot.qtype),
        })
    }

    /// Holds `entry`, just served from moka for `req` at `now` (whole, not truncated), to be
    /// served from here until `until`.
    pub fn put(
        &mut self,
        req: &Request<'_>,
        entry: &Arc<Cached>,
        until: Instant,
        now: Instant,
        count_down: impl CountDown,
    ) {
        let query = req.bytes();
        let answer_len = entry.bytes.len();
        if answer_len > MAX_ANSWER_BYTES.min(req.max_size) || query.len() > MAX_QUERY_BYTES {
            return;
        }
        let mut held = Vec::with_capacity(query.len() + answer_len);
        held.extend_from_slice(query);
        held.extend_from_slice(&entry.bytes);
        let key = &query[2..];
        let hash = self.hasher.hash_one(key);
        let mut slot = Slot {
            hash,
            held: held.into(),
            query_len: query.len() as u16,
            name_end: req.question.name_end as u16,
            answer_name_end: wire::question_name_end(&entry.bytes),
            qtype: req.question.qtype,
            rcode: u16::from(wire::rcode(&entry.bytes)),
            entry: entry.clone(),
            aged_at: now,
            until,
            served: 0,
        };
        slot.age(now, &count_down);
        if self.table.len() >= MAX_HELD && self.table.find(hash, |s| s.key() == key).is_none() {
            self.table.clear();
        }
        match self.table.entry(hash, |s| s.key() == key, |s| s.hash) {
            Entry::Occupied(mut held) => *held.get_mut() = slot,
            Entry::Vacant(room) => {
                room.insert(slot);
            }
        }
    }

    /// How many answers it holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether it holds no answer.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::request::Transport;
    use crate::metrics::Metrics;

    fn snapshot(serial: u32) -> Arc<Snapshot> {
        Arc::new(crate::records::demo_snapshot(serial))
    }

    /// A query for `name` (wire form) A with ID 1 and RD set.
    fn query(name: &[u8]) -> Vec<u8> {
        let mut q = vec![0, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        q
    }

    /// An upstream's answer to a query for `name`: ID 0x7777, RD clear, one A record whose TTL
    /// is the answer's last 10th to 6th bytes; `extra` bytes of RDATA make it longer.
    fn entry(name: &[u8], extra: usize) -> Arc<Cached> {
        let mut r = vec![0x77, 0x77, 0x84, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        r.extend_from_slice(name);
        r.extend_from_slice(&[0, 1, 0, 1]);
        let ttl_at = r.len() + 6;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10]);
        r.extend_from_slice(&(4 + extra as u16).to_be_bytes());
        r.extend_from_slice(&[192, 0, 2, 1]);
        r.resize(r.len() + extra, 0);
        Arc::new(Cached {
            bytes: r,
            ttl_offsets: vec![ttl_at],
            stored: Instant::now(),
            ttl: Duration::from_secs(3600),
            negative: false,
        })
    }

    /// Counts the entry's TTL down by its age, as the forwarder does.
    fn count_down(entry: &Cached, age: u32, out: &mut [u8]) {
        wire::set_ttls(out, &entry.ttl_offsets, |t| t.saturating_sub(age));
    }

    fn ttl(reply: &Reply) -> u32 {
        let at = reply.bytes.len() - 10;
        u32::from_be_bytes(reply.bytes[at..at + 4].try_into().unwrap())
    }

    const NAME: &[u8] = b"\x04HoSt\x07example\x00";

    /// A table following `snap` that holds the answer to `q`, served at `now` until an hour on.
    fn holding(snap: &Arc<Snapshot>, q: &[u8], e: &Arc<Cached>, now: Instant) -> HotAnswers {
        let mut hot = HotAnswers::default();
        hot.follow(snap);
        let req = Request::parse(q, Transport::Udp, &Metrics::default()).unwrap();
        hot.put(&req, e, now + Duration::from_secs(3600), now, count_down);
        hot
    }

    #[test]
    fn a_query_is_held_under_its_bytes_but_for_the_id_and_answered_as_itself() {
        let snap = snapshot(1);
        let q = query(NAME);
        let e = entry(b"\x04host\x07example\x00", 0);
        let now = e.stored;
        let mut hot = holding(&snap, &q, &e, now);
        let mut other_id = q.clone();
        other_id[..2].copy_from_slice(&[0xab, 0xcd]);
        let held = hot.get(&other_id, now, count_down).expect("held");
        assert_eq!(wire::id(&held.bytes), 0xabcd);
        // The query's RD bit and spelling, the upstream's records.
        assert_eq!(held.bytes[2] & 0x01, 0x01);
        assert_eq!(&held.bytes[12..12 + NAME.len()], NAME);
        assert_eq!(&held.bytes[held.bytes.len() - 4..], [192, 0, 2, 1]);
        assert_eq!(
            (held.path, held.rcode, held.qtype),
            (Path::CacheHit, 0, Some(1))
        );
        // Other flags, another spelling, an EDNS record: other queries.
        let mut no_rd = q.clone();
        no_rd[2] = 0;
        let lower = query(b"\x04host\x07example\x00");
        let mut edns = q.clone();
        edns[11] = 1;
        edns.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        for other in [no_rd, lower, edns] {
            assert!(hot.get(&other, now, count_down).is_none());
        }
        // The entry itself is left as moka holds it.
        assert_eq!(wire::id(&e.bytes), 0x7777);
        assert_eq!(&e.bytes[12..17], b"\x04host");
    }

    #[test]
    fn ttls_are_written_again_once_the_entry_is_a_second_older() {
        let snap = snapshot(1);
        let q = query(NAME);
        let e = entry(NAME, 0);
        let t0 = e.stored;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut hot = holding(&snap, &q, &e, at(300));
        let writes = std::cell::Cell::new(0);
        let counting = |entry: &Cached, age: u32, out: &mut [u8]| {
            writes.set(writes.get() + 1);
            count_down(entry, age, out);
        };
        let mut ttl_at = |ms: u64| ttl(&hot.get(&q, at(ms), counting).expect("held"));
        assert_eq!(ttl_at(300), 3600);
        assert_eq!(ttl_at(999), 3600);
        assert_eq!(ttl_at(1_000), 3599);
        assert_eq!(ttl_at(1_900), 3599);
        assert_eq!(ttl_at(3_200), 3597);
        assert_eq!(ttl_at(3_300), 3597);
        assert_eq!(writes.get(), 2, "written again at 1 s and 3.2 s only");
        // Each time written from the entry, which keeps its TTL.
        assert_eq!(
            &e.bytes[e.bytes.len() - 10..e.bytes.len() - 6],
            [0, 0, 0x0e, 0x10]
        );
    }

    #[test]
    fn serves_until_the_limit_and_sends_every_few_hits_to_moka() {
        let snap = snapshot(1);
        let q = query(NAME);
        let e = entry(NAME, 0);
        let now = e.stored;
        let mut hot = holding(&snap, &q, &e, now);
        for _ in 0..RECHECK_EVERY {
            assert!(hot.get(&q, now, count_down).is_some());
        }
        assert!(hot.get(&q, now, count_down).is_none(), "due for moka");
        let mut hot = holding(&snap, &q, &e, now);
        assert!(hot
            .get(&q, now + Duration::from_secs(3599), count_down)
            .is_some());
        assert!(hot
            .get(&q, now + Duration::from_secs(3600), count_down)
            .is_none());
    }

    #[test]
    fn a_new_snapshot_empties_the_table() {
        let (first, second) = (snapshot(1), snapshot(2));
        let q = query(NAME);
        let e = entry(NAME, 0);
        let mut hot = holding(&first, &q, &e, e.stored);
        hot.follow(&first);
        assert_eq!(hot.len(), 1);
        hot.follow(&second);
        assert!(hot.is_empty());
        assert!(hot.get(&q, e.stored, count_down).is_none());
    }

    #[test]
    fn long_answers_answers_over_the_clients_limit_and_long_queries_are_not_held() {
        let snap = snapshot(1);
        let q = query(NAME);
        let long = entry(NAME, MAX_ANSWER_BYTES);
        assert!(holding(&snap, &q, &long, long.stored).is_empty());
        let fits = entry(NAME, 0);
        let mut long_query = q.clone();
        long_query[11] = 1;
        long_query.extend_from_slice(&[0, 0, 41, 16, 0, 0, 0, 0, 0, 2, 0x02, 0x04]);
        long_query.extend_from_slice(&[0, 12, 2, 0]);
        long_query.resize(long_query.len() + 512, 0);
        assert!(holding(&snap, &long_query, &fits, fits.stored).is_empty());
    }

    #[test]
    fn a_full_table_empties_itself_and_holds_on_and_a_repeat_replaces() {
        let snap = snapshot(1);
        let mut hot = HotAnswers::default();
        hot.follow(&snap);
        let metrics = Metrics::default();
        let now = Instant::now();
        let until = now + Duration::from_secs(60);
        let names: Vec<Vec<u8>> = (0..=MAX_HELD)
            .map(|i| {
                let label = format!("n{i}");
                let mut n = vec![label.len() as u8];
                n.extend_from_slice(label.as_bytes());
                n.extend_from_slice(b"\x07example\x00");
                n
            })
            .collect();
        for name in &names[..MAX_HELD] {
            let q = query(name);
            let req = Request::parse(&q, Transport::Udp, &metrics).unwrap();
            hot.put(&req, &entry(name, 0), until, now, count_down);
        }
        assert_eq!(hot.len(), MAX_HELD);
        // A repeat replaces its own answer.
        let q0 = query(&names[0]);
        let req = Request::parse(&q0, Transport::Udp, &metrics).unwrap();
        hot.put(&req, &entry(&names[0], 0), until, now, count_down);
        assert_eq!(hot.len(), MAX_HELD);
        // One more empties it, and is held.
        let last = query(&names[MAX_HELD]);
        let req = Request::parse(&last, Transport::Udp, &metrics).unwrap();
        hot.put(&req, &entry(&names[MAX_HELD], 0), until, now, count_down);
        assert_eq!(hot.len(), 1);
        assert!(hot.get(&last, now, count_down).is_some());
        assert!(hot.get(&q0, now, count_down).is_none());
    }
}
