//! Writes a synthetic Mesos master state document to stdout, for benchmarks that serve a
//! cluster of a chosen size from a state file.
//!
//!     cargo run --release --example synthetic_state -- 1000 > state.json
//!     cargo run --release --example synthetic_state -- 100000 uniform > state.json
//!
//! The second form is the footprint benchmark's shape (`synthetic::uniform_state_value`: 10
//! frameworks, one agent per 50 tasks), for timing the daemon by hand on the same document.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let tasks = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let doc = match args.next().as_deref() {
        Some("uniform") => {
            serde_json::to_vec(&mesos_dns_sidecar::mesos::synthetic::uniform_state_value(
                tasks,
                10,
                (tasks / 50).max(1),
                "renamed-0",
            ))?
        }
        _ => mesos_dns_sidecar::mesos::synthetic::state_json(tasks),
    };
    std::io::stdout().write_all(&doc)
}
