//! Records: Mesos state turned into Mesos-DNS's names, as an immutable snapshot.

pub mod generator;
pub mod hash;
pub mod labels;
pub mod snapshot;

#[cfg(test)]
mod generator_tests;

pub use generator::{build, enumerate, BuildError, HostAddrs, RecordSettings};
pub use snapshot::Snapshot;
