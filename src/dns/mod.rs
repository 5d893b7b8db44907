//! The DNS server: wire handling and the authoritative responder for the cluster domain.

pub mod answer;
pub mod server;

pub use answer::{Responder, Transport};
pub use server::{Listeners, TcpLimits};
