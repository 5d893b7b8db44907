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
