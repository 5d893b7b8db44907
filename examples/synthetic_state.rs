//! Writes a synthetic Mesos master state document to stdout, for benchmarks that serve a
//! cluster of a chosen size from a state file.
//!
//!     cargo run --release --example synthetic_state -- 1000 > state.json

use std::io::Write;

fn main() -> std::io::Result<()> {
    let tasks = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    std::io::stdout().write_all(&mesos_dns_sidecar::mesos::synthetic::state_json(tasks))
}
