//! The bundled example cluster served by `--demo`: a small Marathon and Chronos cluster with
//! container-network tasks, host-network tasks with DiscoveryInfo, an IPv6 address and a task
//! that is not running yet, so every record family shows up in `dig`.

/// The example master state document.
pub const DEMO_STATE: &[u8] = include_bytes!("demo_state.json");
