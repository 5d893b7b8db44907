//! Any bytes as a master state document: parse, and when it parses, build the records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_dns_sidecar::config::Config;
use mesos_dns_sidecar::mesos::model::State;
use mesos_dns_sidecar::records::{build, enumerate, HostAddrs, RecordSettings};

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = State::from_json(data) {
        let settings = RecordSettings::from_config(&Config::default(), vec![]);
        let _ = build(&state, &settings, &HostAddrs::new(), 1);
        let _ = enumerate(&state, &settings, &HostAddrs::new());
    }
});
