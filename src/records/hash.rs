//! The short task-ID hash in Mesos-DNS's per-task unique names (`task-HASH-slave.framework`).
//!
//! Mesos-DNS takes the SHA-1 of the task ID, encodes it in z-base-32 (a human-oriented base 32
//! alphabet) and keeps the first five characters.

use sha1::{Digest, Sha1};

/// The z-base-32 alphabet, in value order.
const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Returns the five-character task hash Mesos-DNS puts in a task's unique name.
pub fn task_hash(task_id: &str) -> String {
    let digest = Sha1::digest(task_id.as_bytes());
    // Five characters need 25 bits: the first four bytes are enough.
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (0..5)
        .map(|i| ZBASE32[((bits >> (27 - 5 * i)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::task_hash;

    #[test]
    fn matches_mesos_dns_reference_values() {
        // Mesos-DNS's own test value, and the hashes visible in its fake.json expectations.
        assert_eq!(task_hash("test"), "iffe9");
        assert_eq!(
            task_hash("liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5"),
            "4dfjd"
        );
        assert_eq!(
            task_hash("car-store.43758382-562f-11e4-a088-c20493233aa5"),
            "zinaz"
        );
    }
}
