//! The master polling source against an in-process fake master, and the HTTP API.

use std::time::Duration;

use crate::common::master::{cluster_json, cluster_json_with_task, http_get, FakeMaster, Mode};
use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

fn daemon_polling(masters: &[&FakeMaster], extra: Value) -> (Daemon, tempfile::TempDir) {
    let mut config = json!({
        "masters": masters.iter().map(|m| m.addr.to_string()).collect::<Vec<_>>(),
        "refreshSeconds": 1,
        "stateTimeoutSeconds": 1,
        "stateFile": "",
        "externalon": false,
    });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            config[k] = v;
        }
    }
    start_with_config(config, &[])
}

#[test]
fn serves_the_leaders_state_and_picks_up_changes() {
    let master = FakeMaster::start(&cluster_json());
    let (d, _dir) = daemon_polling(&[&master], json!({}));
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    // The leader record is the fake master itself.
    let m = d.udp("leader.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 127.0.0.1"]);

    master.set_state(&cluster_json_with_task("newapp"), master.addr);
    d.wait_for("newapp.marathon.mesos.", RecordType::A, |m| {
        answers(m) == ["A 10.7.7.7"]
    });
}

#[test]
fn follows_redirects_and_leader_hints_and_old_endpoints() {
    let leader = FakeMaster::start(&cluster_json());
    let redirecting = FakeMaster::start(&cluster_json());
    redirecting.set_mode(Mode::RedirectTo(leader.addr));
    let (d, _dir) = daemon_polling(&[&redirecting], json!({}));
    d.wait_answering("nginx.marathon.mesos.");
    assert!(leader.requests.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    // A non-leading master answering with a state that names another leader.
    let leader2 = FakeMaster::start(&cluster_json_with_task("fromleader"));
    let follower = FakeMaster::start(&cluster_json());
    follower.set_state(&cluster_json(), leader2.addr);
    let (d, _dir2) = daemon_polling(&[&follower], json!({}));
    d.wait_for("fromleader.marathon.mesos.", RecordType::A, |m| {
        !m.answers.is_empty()
    });

    // Mesos < 1.0: only /master/state.json.
    let old = FakeMaster::start(&cluster_json());
    old.set_mode(Mode::OldOnly);
    let (d, _dir3) = daemon_polling(&[&old], json!({}));
    d.wait_answering("nginx.marathon.mesos.");

    // gzip-encoded answers.
    let gz = FakeMaster::start(&cluster_json());
    gz.set_mode(Mode::Gzip);
    let (d, _dir4) = daemon_polling(&[&gz], json!({}));
    d.wait_answering("nginx.marathon.mesos.");
}

#[test]
fn sends_mesos_credentials() {
    let master = FakeMaster::start(&cluster_json());
    master.set_mode(Mode::RequireAuth);
    let (d, _dir) = daemon_polling(
        &[&master],
        json!({"mesosCredentials": {"principal": "user", "secret": "secret"}, "mesosAuthentication": "basic"}),
    );
    d.wait_answering("nginx.marathon.mesos.");
}

#[test]
fn every_fault_keeps_the_last_snapshot_and_recovers() {
    let master = FakeMaster::start(&cluster_json());
    let (d, _dir) = daemon_polling(&[&master], json!({}));
    d.wait_answering("nginx.marathon.mesos.");
    let errors_before = metric(&d, "mesos_dns_sidecar_state_load_errors_total");
    for mode in [Mode::Error, Mode::Garbage, Mode::Truncated, Mode::Hang] {
        master.set_mode(mode.clone());
        std::thread::sleep(Duration::from_millis(2300));
        let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
        assert_eq!(answers(&m), ["A 10.44.3.3"], "after {mode:?}");
    }
    assert!(
        metric(&d, "mesos_dns_sidecar_state_load_errors_total") > errors_before,
        "garbage and truncated documents are counted"
    );
    let (code, _) = http_get(d.http, "/ready");
    assert_eq!(code, 200);
    master.set_state(&cluster_json_with_task("recovered"), master.addr);
    master.set_mode(Mode::Normal);
    d.wait_for("recovered.marathon.mesos.", RecordType::A, |m| {
        !m.answers.is_empty()
    });
}

#[test]
fn a_restarted_daemon_serves_the_persisted_state_before_the_master_answers() {
    let master = FakeMaster::start(&cluster_json());
    let dir = tempfile::tempdir().unwrap();
    let persist = dir.path().join("state.json");
    let extra = json!({"persistFile": persist.to_str().unwrap()});
    {
        let (d, _cfg) = daemon_polling(&[&master], extra.clone());
        d.wait_answering("nginx.marathon.mesos.");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !persist.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(persist.exists());
    }
    master.set_mode(Mode::Error);
    let (d, _cfg) = daemon_polling(&[&master], extra);
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    assert!(metric(&d, "mesos_dns_sidecar_snapshot_age_seconds") >= 0.0);
}

#[test]
fn no_state_yet_means_servfail_and_not_ready() {
    let master = FakeMaster::start(&cluster_json());
    master.set_mode(Mode::Error);
    let port = free_port();
    let http_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        serde_json::to_vec(
            &json!({"masters": [master.addr.to_string()], "refreshSeconds": 1, "externalon": false}),
        )
        .unwrap(),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
        .args(["--config", cfg.to_str().unwrap(), "--listener", "127.0.0.1"])
        .args([
            "--port",
            &port.to_string(),
            "--http-port",
            &http_port.to_string(),
            "--log-level",
            "error",
        ])
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        http: std::net::SocketAddr::from(([127, 0, 0, 1], http_port)),
    };
    let m = d.wait_for("nginx.marathon.mesos.", RecordType::A, |m| {
        m.metadata.response_code == ResponseCode::ServFail
    });
    assert!(m.answers.is_empty());
    assert_eq!(http_get(d.http, "/ready").0, 503);
    assert_eq!(http_get(d.http, "/health").0, 200);
    master.set_mode(Mode::Normal);
    d.wait_answering("nginx.marathon.mesos.");
    assert_eq!(http_get(d.http, "/ready").0, 200);
}

fn get_json(d: &Daemon, path: &str) -> Value {
    let (code, body) = http_get(d.http, path);
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[test]
fn http_api_matches_mesos_dns_shapes_for_the_cluster_fixture() {
    let d = start(&["--state-file", fixture(CLUSTER).to_str().unwrap()]);

    let v = get_json(&d, "/v1/version");
    assert_eq!(v["Service"], "Mesos-DNS");
    assert_eq!(v["URL"], "https://github.com/mesosphere/mesos-dns");
    assert!(v["Version"].is_string());

    let c = get_json(&d, "/v1/config");
    for key in [
        "RefreshSeconds",
        "Port",
        "TTL",
        "Domain",
        "SOAMname",
        "Masters",
        "Resolvers",
        "IPSources",
        "HttpPort",
        "DnsOn",
        "HttpOn",
        "EnforceRFC952",
    ] {
        assert!(c.get(key).is_some(), "config lacks {key}: {c}");
    }
    assert_eq!(c["Domain"], "mesos");

    assert_eq!(
        get_json(&d, "/v1/hosts/nginx.marathon.mesos"),
        json!([{"host": "nginx.marathon.mesos.", "ip": "10.44.3.3"}])
    );
    assert_eq!(
        get_json(&d, "/v1/hosts/NGINX.marathon.mesos."),
        json!([{"host": "nginx.marathon.mesos.", "ip": "10.44.3.3"}])
    );
    assert_eq!(
        get_json(&d, "/v1/hosts/nope.mesos"),
        json!([{"host": "", "ip": ""}])
    );

    let mut s = get_json(&d, "/v1/services/_ledger-store._tcp.marathon.mesos");
    s.as_array_mut()
        .unwrap()
        .sort_by_key(|v| v["port"].as_str().unwrap().to_string());
    assert_eq!(
        s,
        json!([
            {"service": "_ledger-store._tcp.marathon.mesos", "host": "ledger-store-rfrib-s11.marathon.slave.mesos.", "ip": "10.40.0.11", "port": "31700"},
            {"service": "_ledger-store._tcp.marathon.mesos", "host": "ledger-store-rfrib-s11.marathon.slave.mesos.", "ip": "10.40.0.11", "port": "31701"},
        ])
    );
    assert_eq!(
        get_json(&d, "/v1/services/_nope._tcp.mesos"),
        json!([{"service": "", "host": "", "ip": "", "port": ""}])
    );

    let e = get_json(&d, "/v1/enumerate");
    let fws = e["frameworks"].as_array().unwrap();
    assert_eq!(fws.len(), 4);
    let marathon = fws.iter().find(|f| f["name"] == "marathon").unwrap();
    let nginx = marathon["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "nginx")
        .unwrap();
    assert_eq!(nginx["id"], "nginx.9e63a4c1-8d3a-11ee-9a51-0242ac110002");
    assert!(nginx["records"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "nginx.marathon.mesos.", "host": "10.44.3.3", "rtype": "A"})));

    let a = get_json(&d, "/v1/axfr");
    assert_eq!(a["Domain"], "mesos");
    assert_eq!(a["Mname"], "ns1.mesos.");
    assert_eq!(
        a["Records"]["As"]["nginx.marathon.mesos."],
        json!(["10.44.3.3"])
    );
    assert_eq!(
        a["Records"]["AAAAs"]["slave.mesos."],
        json!(["2001:db8:40::13"])
    );
    assert_eq!(
        a["Records"]["SRVs"]["_leader._tcp.mesos."],
        json!(["leader.mesos.:5050"])
    );
    assert!(a["Serial"].as_u64().unwrap() > 0);

    d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert!(metric(&d, "mesos_dns_sidecar_udp_queries_total") >= 1.0);
    assert!(metric(&d, "mesos_dns_sidecar_records") > 100.0);
    let (_, body) = http_get(d.http, "/metrics");
    let a_queries = body
        .lines()
        .find_map(|l| l.strip_prefix("mesos_dns_sidecar_queries_total{qtype=\"A\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(a_queries >= Some(1), "{body}");
    assert!(body.contains("mesos_dns_sidecar_responses_total{rcode=\"0\"}"));
    assert_eq!(http_get(d.http, "/health").0, 200);
}

/// Runs openssl with `args` in `dir`; whether it succeeded.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
fn certificates(dir: &std::path::Path) -> bool {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    ) && ["server", "client"].iter().all(|who| {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ],
        ) && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{who}.pem"),
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        )
    })
}

#[test]
fn masters_that_verify_clients_get_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let missing = (!certificates(dir.path())).then(|| "openssl cannot make certificates".into());
    if !prerequisite_met("the mutual TLS test", missing) {
        return;
    }
    // A master over TLS that requires a client certificate signed by the CA: openssl's
    // s_server serving files (-WWW), so GET /master/state is the cluster document.
    let port = free_port();
    let mut doc = cluster_json();
    doc["leader"] = format!("master@127.0.0.1:{port}").into();
    std::fs::create_dir_all(dir.path().join("master")).unwrap();
    std::fs::write(dir.path().join("master/state"), doc.to_string()).unwrap();
    let mut server = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-accept",
            &port.to_string(),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-CAfile",
            "ca.pem",
            "-Verify",
            "1",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let path = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let base = json!({
        "masters": [format!("127.0.0.1:{port}")],
        "MesosHTTPSOn": true,
        "CACertFile": path("ca.pem"),
        "stream": false,
        "refreshSeconds": 1,
        "stateTimeoutSeconds": 2,
        "stateFile": "",
        "externalon": false,
    });
    let mut with_cert = base.clone();
    with_cert["CertFile"] = path("client.pem").into();
    with_cert["KeyFile"] = path("client.key").into();
    let (d, _cfg) = start_with_config(with_cert, &[]);
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    drop(d);

    // Without it, the master refuses the handshake: no state, so no answer for cluster names.
    let (d, _cfg) = crate::common::start_with_config_unready(base, &[]);
    std::thread::sleep(Duration::from_secs(2));
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let _ = server.kill();
    let _ = server.wait();
}
