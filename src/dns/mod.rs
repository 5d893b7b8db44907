//! The DNS server: wire handling, the authoritative responder for the cluster domain, and
//! forwarding of every other name to the host's resolvers.

pub mod access;
pub mod answer;
pub mod cache;
pub mod fast;
pub mod forward;
pub mod server;
pub mod udp_batch;
pub mod upstream;
pub mod wire;

pub use answer::{Outcome, Responder, Transport};
pub use forward::Forwarder;
pub use server::{Handlers, Listeners, ServerLimits};
