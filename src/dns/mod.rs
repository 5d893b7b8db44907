//! The DNS server: wire handling, the authoritative responder for the cluster domain, and
//! forwarding of every other name to the host's resolvers.

pub mod access;
pub mod answer;
pub mod cache;
pub mod fast;
pub mod forward;
pub mod hot;
pub mod hot_cluster;
pub mod request;
pub mod server;
pub mod udp_batch;
pub mod upstream;
pub mod wire;

pub use answer::Responder;
pub use forward::Forwarder;
pub use request::{Reply, Request, Transport};
pub use server::{Handlers, Listeners, Routed, ServerLimits};
