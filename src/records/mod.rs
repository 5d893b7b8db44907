//! Records: Mesos state turned into Mesos-DNS's names, as an immutable snapshot.

pub mod generator;
pub mod hash;
pub mod labels;
pub mod names;
pub mod snapshot;
pub mod static_records;

#[cfg(test)]
mod generator_tests;

pub use generator::{
    build, build_from_records, enumerate, generate_records, BuildError, Generated, HostAddrs,
    ListedRecord, RecordSettings,
};
pub use snapshot::Snapshot;
