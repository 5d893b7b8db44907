//! The black-box test suite, one binary (one link instead of thirteen): each module starts the
//! real daemon (or uses the library) and talks to it over sockets and files.
//!
//! Run one module with a filter, e.g. `cargo test --test it dns_server`. The 10-million-name
//! cache soak (`cache_memory`) is ignored by default and runs in release:
//! `cargo test --release --test it cache_memory -- --ignored`. The `conformance` module runs
//! against the third-party state documents in `../shared/fixtures` when they exist beside the
//! repository, and reports itself skipped when they don't.

mod common;

mod cache_memory;
mod cli;
mod cluster_extras;
mod conformance;
mod dns_server;
mod forwarding;
mod gapless;
mod glibc;
mod guard;
mod http_hardening;
mod huge_answers;
mod master_source;
mod mesos_dns_source;
mod relay;
mod reload;
mod resolvconf_crash;
mod robustness;
mod security;
mod slow_upstream;
mod stale_state;
mod streaming;
mod systemd_unit;
mod upstream_change;
mod zookeeper;
