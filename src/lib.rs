//! mesos-dns-sidecar: node-local DNS for Apache Mesos clusters.
//!
//! Keeps a snapshot of the cluster's state, answers the cluster's names from it exactly as
//! Mesos-DNS would, and serves them on every agent host.

pub mod config;
pub mod daemon;
pub mod dns;
pub mod guard;
pub mod http;
pub mod mesos;
pub mod metrics;
pub mod netif;
pub mod notify;
pub mod publish;
pub mod records;
pub mod resolv;
pub mod resolvconf;
pub mod sockets;
