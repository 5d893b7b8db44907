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

/// The demo cluster's snapshot with the default settings, numbered `serial`: the ready-made
/// snapshot of the unit tests that need one but not a particular cluster.
#[cfg(test)]
pub(crate) fn demo_snapshot(serial: u32) -> Snapshot {
    let state = crate::mesos::model::State::from_json(crate::mesos::demo::DEMO_STATE).unwrap();
    let settings = RecordSettings::from_config(&Default::default(), Vec::new());
    build(&state, &settings, &HostAddrs::new(), serial).unwrap()
}
