//! Any bytes as an event stream: RecordIO framing split at every position, and the events
//! applied to the stream state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_dns_sidecar::mesos::stream::{RecordIo, StreamState};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize) % (data.len() + 1);
    let mut rio = RecordIo::new(1 << 20);
    let mut state = StreamState::new("127.0.0.1:5050", None);
    for part in [&data[..split], &data[split..]] {
        match rio.push(part) {
            Ok(records) => {
                for r in records {
                    let _ = state.apply(&r);
                }
            }
            Err(_) => return,
        }
    }
    let _ = state.to_state();
});
