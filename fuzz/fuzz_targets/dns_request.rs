//! Any bytes as a DNS request: parsed as the listeners parse it, routed by the responder's
//! zone test, answered by the responder (cluster names from the demo state) when it is ours,
//! and fed to the raw-message walkers and builders the forwarder uses.
#![no_main]

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use libfuzzer_sys::fuzz_target;
use mesos_dns_sidecar::config::Config;
use mesos_dns_sidecar::dns::{wire, Request, Responder, Transport};
use mesos_dns_sidecar::mesos::{demo, model::State};
use mesos_dns_sidecar::metrics::Metrics;
use mesos_dns_sidecar::records::{build, HostAddrs, RecordSettings};

fn responder() -> &'static Responder {
    static R: OnceLock<Responder> = OnceLock::new();
    R.get_or_init(|| {
        let config = Config::default();
        let settings = RecordSettings::from_config(&config, vec!["127.0.0.1".parse().unwrap()]);
        let state = State::from_json(demo::DEMO_STATE).unwrap();
        let snap = build(&state, &settings, &HostAddrs::new(), 1).unwrap();
        let store = Arc::new(ArcSwapOption::from_pointee(snap));
        Responder::new("mesos", store, Arc::new(Metrics::default()), true).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let metrics = Metrics::default();
    for transport in [Transport::Udp, Transport::Tcp] {
        let Ok(req) = Request::parse(data, transport, &metrics) else {
            continue;
        };
        assert!(req.max_size >= 512);
        if responder().serves(&req.question, data) {
            let _ = responder().answer(&req);
        } else {
            let _ = wire::error_response(data, &req.question, &req.edns, 2, true);
            let _ = wire::truncated_response(data, &req.question, &req.edns, 0);
        }
    }
    let _ = wire::layout(data);
    let _ = wire::query_type(data);
    if let Some(r) = wire::empty_response(data, 5, true) {
        assert!(r.len() <= data.len(), "never larger than the query");
    }
    let mut answer = data.to_vec();
    if wire::sanitize(&mut answer).is_ok() {
        // What passes is walkable, and every TTL it keeps is at most 2^31 - 1.
        let layout = wire::layout(&answer).expect("a sanitized answer walks");
        for &o in &layout.ttl_offsets {
            assert!(answer[o] & 0x80 == 0);
        }
    }
    if let Ok(info) = wire::edns(data) {
        if info.present {
            let _ = wire::has_option(data, info.rdlen_at, 65001, b"x");
            let mut copy = data.to_vec();
            wire::append_option(&mut copy, &info, 65001, b"marker");
        }
    }
});
