//! Leader detection with a real ZooKeeper (Debian's `zookeeper` package): two masters register,
//! the leader's node goes away, and the daemon follows the new leader. CI installs ZooKeeper;
//! elsewhere the test is skipped when it isn't installed.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::master::{cluster_json, cluster_json_with_task, FakeMaster};
use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;
use zookeeper_client as zk;

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

/// The server process, and its data directory (deleted when the server is dropped).
struct ZkServer {
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_zookeeper(port: u16) -> Option<ZkServer> {
    if !std::path::Path::new(ZK_JAR).exists() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new("java")
        .args(["-cp", &format!("/etc/zookeeper/conf:{ZK_JAR}")])
        .args([
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            cfg.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = ZkServer { child, _data: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "ZooKeeper did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(server)
}

fn master_info(addr: SocketAddr) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "address": {"hostname": "localhost", "ip": addr.ip().to_string(), "port": addr.port()},
        "hostname": "localhost", "id": format!("master-{}", addr.port()),
        "pid": format!("master@{addr}"), "port": addr.port(), "version": "1.11.0"
    }))
    .unwrap()
}

/// A session with the server. A JVM just started on a loaded machine accepts connections before
/// it answers them quickly, so the handshake gets generous timeouts and a few attempts.
async fn connect(port: u16) -> zk::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(Duration::from_secs(8))
            .connect(&format!("127.0.0.1:{port}"))
            .await;
        match attempt {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                eprintln!("ZooKeeper not answering yet ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("ZooKeeper never answered: {e}"),
        }
    }
}

#[test]
fn follows_the_leader_registered_in_zookeeper() {
    let port = free_port();
    let zookeeper = start_zookeeper(port);
    let missing = zookeeper
        .is_none()
        .then(|| format!("ZooKeeper ({ZK_JAR}) not installed (apt-get install zookeeper)"));
    if !prerequisite_met("the ZooKeeper test", missing) {
        return;
    }

    let first = FakeMaster::start(&cluster_json());
    let second_doc = cluster_json_with_task("fromsecond");
    let second = FakeMaster::start(&second_doc);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        let client = connect(port).await;
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client.create("/mesos", b"", &open).await.unwrap();
        client
            .create(
                "/mesos/json.info_0000000001",
                &master_info(first.addr),
                &open,
            )
            .await
            .unwrap();
        client
            .create(
                "/mesos/json.info_0000000002",
                &master_info(second.addr),
                &open,
            )
            .await
            .unwrap();
        client
    });

    // No static masters: only ZooKeeper says where the leader is. A long refresh interval
    // shows that a leader change triggers a poll by itself.
    let (d, _dir) = start_with_config(
        json!({"zk": format!("zk://127.0.0.1:{port}/mesos"), "stateFile": "", "refreshSeconds": 60,
               "externalon": false}),
        &[],
    );
    let m = d.udp("leader.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 127.0.0.1"]);
    assert!(d
        .udp("fromsecond.marathon.mesos.", RecordType::A, None)
        .answers
        .is_empty());

    // The leader dies: its node goes away, the next in line leads.
    rt.block_on(client.delete("/mesos/json.info_0000000001", None))
        .unwrap();
    d.wait_for("fromsecond.marathon.mesos.", RecordType::A, |m| {
        !m.answers.is_empty()
    });
    let m = d.udp("_leader._tcp.mesos.", RecordType::SRV, None);
    assert!(
        m.answers
            .iter()
            .any(|r| r.data.to_string().contains(&second.addr.port().to_string())),
        "{:?}",
        answers(&m)
    );
}
