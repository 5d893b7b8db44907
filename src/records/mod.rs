//! Records: Mesos state turned into Mesos-DNS's names, as an immutable snapshot.

pub mod generator;
pub mod hash;
pub mod labels;
pub mod names;
pub mod shards;
pub mod snapshot;
pub mod static_records;

#[cfg(test)]
mod generator_tests;

pub use generator::{
    build_from_records, enumerate, BuildError, HostAddrs, ListedRecord, RecordSettings,
};
pub use shards::{build, generate_records, update, Generated};
pub use snapshot::Snapshot;
