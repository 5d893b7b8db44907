//! A table of distinct names stored once, end to end in one buffer, with a hash index.
//!
//! A cluster of 100,000 tasks has about half a million owner names. Kept as one string each in
//! a hash map (and a second copy in a list for numbering), they cost two allocations per name
//! and dominate both the build's allocator traffic and the snapshot's size. Here every name is
//! appended to one `String` and numbered in insertion order; the index holds only the numbers
//! and finds a name by hashing the text and comparing against the buffer.

use hashbrown::HashTable;

/// Distinct names, numbered densely in insertion order.
#[derive(Clone, Default)]
pub struct NameTable {
    /// Every name, end to end.
    text: String,
    /// End of name `i` in `text` (its start is the previous end).
    ends: Vec<u32>,
    /// Name numbers, by the hash of their text.
    index: HashTable<u32>,
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for NameTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameTable")
            .field("names", &self.len())
            .field("bytes", &self.text.len())
            .finish()
    }
}

impl NameTable {
    /// An empty table with room for `names` names.
    pub fn with_capacity(names: usize) -> NameTable {
        NameTable {
            ends: Vec::with_capacity(names),
            index: HashTable::with_capacity(names),
            ..NameTable::default()
        }
    }

    /// How many names it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds no name.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Name number `i`.
    ///
    /// # Panics
    /// When `i` is not a number this table gave out.
    #[inline]
    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The number of `name`, if the table holds it.
    #[inline]
    pub fn find(&self, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.index.find(hash, |&i| self.get(i) == name).copied()
    }

    /// The number of `name`, added at the end if the table doesn't hold it yet.
    pub fn intern(&mut self, name: &str) -> u32 {
        let hash = self.hasher.hash_one(name);
        let NameTable {
            text,
            ends,
            index,
            hasher,
        } = self;
        let at = |i: u32| {
            let i = i as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            &text[start..ends[i] as usize]
        };
        if let Some(&i) = index.find(hash, |&i| at(i) == name) {
            return i;
        }
        let i = ends.len() as u32;
        text.push_str(name);
        ends.push(text.len() as u32);
        let (text, ends) = (&*text, &*ends);
        index.insert_unique(hash, i, |&j| {
            let j = j as usize;
            let start = if j == 0 { 0 } else { ends[j - 1] as usize };
            hasher.hash_one(&text[start..ends[j] as usize])
        });
        i
    }

    /// Every name with its number, in number order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        (0..self.len() as u32).map(move |i| (i, self.get(i)))
    }

    /// Frees spare capacity (for a table that is complete).
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.index.shrink_to_fit(|&j| {
            let j = j as usize;
            let start = if j == 0 { 0 } else { ends[j - 1] as usize };
            hasher.hash_one(&text[start..ends[j] as usize])
        });
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 4 + self.index.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_each_name_once_in_order() {
        let mut t = NameTable::default();
        assert_eq!(t.intern("a.mesos."), 0);
        assert_eq!(t.intern("b.mesos."), 1);
        assert_eq!(t.intern("a.mesos."), 0);
        assert_eq!(t.intern(""), 2);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(1), "b.mesos.");
        assert_eq!(t.get(2), "");
        assert_eq!(t.find("b.mesos."), Some(1));
        assert_eq!(t.find("c.mesos."), None);
        let all: Vec<_> = t.iter().collect();
        assert_eq!(all, vec![(0, "a.mesos."), (1, "b.mesos."), (2, "")]);
    }

    #[test]
    fn survives_growth_and_shrinking() {
        let mut t = NameTable::with_capacity(2);
        for i in 0..10_000 {
            assert_eq!(t.intern(&format!("n{i}.mesos.")), i);
        }
        t.shrink_to_fit();
        for i in (0..10_000).rev() {
            assert_eq!(t.find(&format!("n{i}.mesos.")), Some(i));
        }
        assert_eq!(t.find("n10000.mesos."), None);
    }
}
