//! The `mesosDns` source: a daemon copying the zone of a Mesos-DNS compatible server through
//! `/v1/axfr` (here, another daemon serving the cluster fixture) serves exactly the same records.

use crate::common::master::http_get;
use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

fn sorted_records(d: &Daemon) -> Value {
    let (code, body) = http_get(d.http, "/v1/axfr");
    assert_eq!(code, 200);
    let mut v: Value = serde_json::from_str(&body).unwrap();
    for kind in ["As", "AAAAs", "SRVs"] {
        for (_, values) in v["Records"][kind].as_object_mut().unwrap() {
            values
                .as_array_mut()
                .unwrap()
                .sort_by_key(|x| x.as_str().unwrap().to_string());
        }
    }
    v["Records"].take()
}

#[test]
fn copies_the_zone_of_an_existing_mesos_dns() {
    let origin = start(&["--state-file", fixture(CLUSTER).to_str().unwrap()]);
    let (copy, _dir) = start_with_config(
        json!({"mesosDns": format!("http://{}", origin.http), "stateFile": "", "refreshSeconds": 1, "externalon": false}),
        &[],
    );
    assert_eq!(
        answers(&copy.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    let srv = copy.udp(
        "_ledger-store._tcp.marathon.mesos.",
        RecordType::SRV,
        Some(1232),
    );
    assert_eq!(srv.answers.len(), 2);
    assert_eq!(srv.additionals.len(), 1, "target addresses come along");
    assert_eq!(sorted_records(&copy), sorted_records(&origin));
}

/// Like every source, `mesosDns` refuses a document over `maxStateBytes`: the zone is never
/// copied, and each refusal is counted as a refresh error.
#[test]
fn a_zone_over_max_state_bytes_is_refused() {
    let origin = start(&["--state-file", fixture(CLUSTER).to_str().unwrap()]);
    let (axfr_code, axfr) = http_get(origin.http, "/v1/axfr");
    assert_eq!(axfr_code, 200);
    let (copy, _dir) = start_with_config_unready(
        json!({"mesosDns": format!("http://{}", origin.http), "stateFile": "", "refreshSeconds": 1,
            "externalon": false, "maxStateBytes": axfr.len() - 1}),
        &[],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(copy.http).is_err() {
        assert!(std::time::Instant::now() < deadline, "no HTTP API");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    while metric(&copy, "mesos_dns_sidecar_state_load_errors_total") < 2.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the oversized zone was never refused"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let m = copy.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert!(m.answers.is_empty(), "{m:?}");
    assert_eq!(metric(&copy, "mesos_dns_sidecar_state_loads_total"), 0.0);
}
