//! Black-box tests of the command line: config checking and Mesos-DNS's flag spelling.

use crate::common::{fixture, sidecar};

#[test]
fn check_config_accepts_the_mesos_dns_sample_in_both_spellings() {
    let sample = fixture("config.json.sample");
    for flag in ["--config", "-config"] {
        let out = sidecar(&[flag, sample.to_str().unwrap(), "--check-config"]);
        assert!(
            out.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "configuration OK"
        );
    }
    let out = sidecar(&[&format!("-config={}", sample.display()), "-check-config"]);
    assert!(out.status.success());
}

#[test]
fn check_config_rejects_bad_values_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"masters": ["10.0.0.1:5050"], "IPSources": ["host", "rkt"]}"#,
            "IPSources",
        ),
        (
            r#"{"masters": ["10.0.0.1:5050"], "port": "fifty-three"}"#,
            "port",
        ),
        (r#"{"masters": ["not-an-address"]}"#, "masters"),
        (
            r#"{"masters": ["10.0.0.1:5050"], "resolvers": ["8.8.8.8", "x"]}"#,
            "resolvers",
        ),
        (r#"{"masters": ["10.0.0.1:5050"], "#, "not valid JSON"),
    ];
    for (i, (doc, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.json"));
        std::fs::write(&path, doc).unwrap();
        let out = sidecar(&["--config", path.to_str().unwrap(), "--check-config"]);
        assert!(!out.status.success(), "{doc} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{doc}: {err}");
    }
    let out = sidecar(&["--config", "/nonexistent/config.json", "--check-config"]);
    assert!(!out.status.success());
}

#[test]
fn unknown_keys_warn_but_pass() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, r#"{"masters": ["10.0.0.1:5050"], "colour": "blue"}"#).unwrap();
    let out = sidecar(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
}

#[test]
fn resolvconf_install_checks_the_daemon_first_and_restore_gives_the_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    let saved = dir.path().join("saved/resolv.conf.orig");
    let original = b"search corp.example\nnameserver 10.0.0.2\noptions ndots:2\n";
    std::fs::write(&resolv, original).unwrap();
    let paths = [
        "--resolv-conf",
        resolv.to_str().unwrap(),
        "--saved",
        saved.to_str().unwrap(),
    ];

    // Nothing answers at the check address: refuse, change nothing.
    let dead = format!("127.0.0.1:{}", crate::common::free_port());
    let mut args = vec!["resolvconf", "install", "--check", &dead, "--wait", "1"];
    args.extend_from_slice(&paths);
    let out = sidecar(&args);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&resolv).unwrap(), original);

    let d = crate::common::start(&["--demo"]);
    let live = d.addr.to_string();
    let mut args = vec![
        "resolvconf",
        "install",
        "--check",
        &live,
        "--nameserver",
        "127.0.0.1",
    ];
    args.extend_from_slice(&paths);
    let out = sidecar(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = std::fs::read_to_string(&resolv).unwrap();
    assert!(now.contains("nameserver 127.0.0.1\n") && now.contains("search corp.example"));

    let mut args = vec!["resolvconf", "status"];
    args.extend_from_slice(&paths);
    assert!(String::from_utf8_lossy(&sidecar(&args).stdout).starts_with("mode: daemon"));

    let mut args = vec!["resolvconf", "restore"];
    args.extend_from_slice(&paths);
    assert!(sidecar(&args).status.success());
    assert_eq!(std::fs::read(&resolv).unwrap(), original);
}

#[test]
fn mesos_dns_flags_from_its_docs_start_the_daemon() {
    // Mesos-DNS's FAQ spelling (`-v=1`, `-v=2`) and glog's `-logtostderr`, as in its units;
    // Go's separate-value spelling (`-v 2`, as in Docker images' command lines, `-log_dir DIR`).
    for flags in [
        &["-v=1", "-logtostderr"][..],
        &["-v=2", "-logtostderr=true"][..],
        &["-v", "2", "-log_dir", "/tmp", "-stderrthreshold", "ERROR"][..],
    ] {
        let mut args = vec!["--demo", "--no-forward"];
        args.extend_from_slice(flags);
        let d = crate::common::start_on(&args, crate::common::free_port());
        d.wait_answering("web.marathon.mesos.");
    }
}

#[test]
fn iam_authentication_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(
        &path,
        br#"{"masters": ["10.0.0.1:5050"], "mesosAuthentication": "iam", "IAMConfigFile": "/etc/iam.json"}"#,
    )
    .unwrap();
    let out = sidecar(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mesosAuthentication") && err.contains("not supported"),
        "{err}"
    );
}

#[test]
fn enumeration_off_hides_every_whole_cluster_document() {
    let (d, _dir) = crate::common::start_with_config(
        serde_json::json!({"EnumerationOn": false, "externalon": false}),
        &[],
    );
    for path in ["/v1/enumerate", "/v1/axfr", "/v1/snapshot"] {
        let (status, _) = crate::common::master::http_get(d.http, path);
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = crate::common::master::http_get(d.http, "/v1/hosts/leader.mesos");
    assert_eq!(status, 200);
}

#[test]
fn the_mesos_dns_sample_config_serves_as_mesos_dns_does() {
    use crate::common::master::{cluster_json, http_get, FakeMaster};
    use crate::common::upstream::FakeUpstream;
    use crate::common::{answers, fixture, start_with_config_unready};
    use hickory_proto::rr::RecordType;
    use serde_json::json;

    // Mesos-DNS's sample configuration as its documentation gives it, with only the addresses
    // of this test's master and upstream put in (and no ZooKeeper, which it would also name).
    let master = FakeMaster::start(&cluster_json());
    let upstream = FakeUpstream::start();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("config.json.sample")).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("zk");
    config["masters"] = json!([master.addr.to_string()]);
    config["resolvers"] = json!([upstream.addr.to_string()]);
    config["stateFile"] = json!("");
    let (d, _dir) = start_with_config_unready(config, &["-v=1", "-logtostderr"]);
    d.wait_answering("leader.mesos.");

    // Cluster names: the sample's TTL (45), RA from recurseon, AA as the zone's server.
    let m = d.udp("leader.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 127.0.0.1"]);
    assert_eq!(m.answers[0].ttl, 45);
    assert!(m.metadata.authoritative && m.metadata.recursion_available);
    // SRV records carry srvRecordDefaultWeight (2).
    let m = d.udp("_leader._tcp.mesos.", RecordType::SRV, None);
    let rdata = m.answers[0].data.to_string();
    assert!(rdata.starts_with("0 2 "), "{rdata}");
    // The SOA from SOAMname/SOARname and the SOA timers.
    let m = d.udp("mesos.", RecordType::SOA, None);
    let soa = m.answers[0].data.to_string();
    assert!(
        soa.starts_with("ns1.mesos. root.ns1.mesos. ") && soa.ends_with(" 60 600 86400 60"),
        "{soa}"
    );
    // externalon: names outside the domain are forwarded to the resolvers.
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert!(!m.answers.is_empty(), "{m:?}");
    assert!(m.metadata.recursion_available);
    // The HTTP API (httpon) with Mesos-DNS's /v1 paths.
    let (status, body) = http_get(d.http, "/v1/hosts/leader.mesos");
    assert_eq!(status, 200);
    assert!(body.contains("127.0.0.1"), "{body}");
    let (status, body) = http_get(d.http, "/v1/config");
    assert_eq!(status, 200);
    let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["TTL"], 45);
    assert_eq!(shown["IPSources"], json!(["docker", "mesos", "host"]));
}
