//! Synthetic master states of any size, for benchmarks and load tests.
//!
//! Deterministic for a given size: a mix of Marathon apps with container networking (IPv4, some
//! with IPv6), host-network apps with DiscoveryInfo and named ports, Docker-label addresses,
//! tasks in non-running states, and agents carrying many tasks each.

use serde_json::{json, Value};

/// A state document with `tasks` tasks spread over `tasks / 20 + 1` agents.
pub fn state_json(tasks: usize) -> Vec<u8> {
    serde_json::to_vec(&state_value(tasks)).unwrap_or_default()
}

/// `n` agents with sequential IDs, hostnames and addresses.
fn agent_values(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": format!("20231101-000000-0000000000-5050-0001-S{i}"),
                   "hostname": format!("agent-{i}.example.internal"),
                   "pid": format!("slave(1)@10.{}.{}.{}:5051", 1 + i / 65536, (i / 256) % 256, i % 256)})
        })
        .collect()
}

/// The same state as a JSON value.
pub fn state_value(tasks: usize) -> Value {
    let agents = tasks / 20 + 1;
    let slaves = agent_values(agents);
    let frameworks_n = 4;
    let mut frameworks: Vec<Value> = (0..frameworks_n)
        .map(|f| {
            json!({"id": format!("fw-{f}"), "name": format!("framework-{f}"),
                   "pid": format!("scheduler(1)@10.0.0.{}:15101", f + 1), "hostname": "m", "tasks": []})
        })
        .collect();
    for t in 0..tasks {
        let app = t / 5; // five instances per app
        let agent = t % agents;
        let mode = app % 4;
        let state = if t % 50 == 49 {
            "TASK_STAGING"
        } else {
            "TASK_RUNNING"
        };
        let mut status = json!({"state": "TASK_RUNNING", "timestamp": 1700000000.0 + t as f64});
        match mode {
            0 => {
                let mut addrs = vec![
                    json!({"ip_address": format!("172.{}.{}.{}", 16 + (t >> 16) % 16, (t >> 8) % 256, t % 256)}),
                ];
                if t % 3 == 0 {
                    addrs.push(
                        json!({"ip_address": format!("fd00::{:x}:{:x}", t >> 16, t & 0xffff)}),
                    );
                }
                status["container_status"] =
                    json!({"network_infos": [{"name": "overlay", "ip_addresses": addrs}]});
            }
            1 => {
                status["labels"] = json!([{"key": "Docker.NetworkSettings.IPAddress",
                    "value": format!("192.168.{}.{}", (t >> 8) % 256, t % 256)}]);
            }
            _ => {}
        }
        let base_port = 31000 + (t % 1000) as u32;
        let mut task = json!({
            "id": format!("app-{app}.{t:08x}-0000-11ee-8c90-0242ac120002"),
            "name": format!("app-{app}"),
            "framework_id": format!("fw-{}", app % frameworks_n),
            "slave_id": format!("20231101-000000-0000000000-5050-0001-S{agent}"),
            "state": state,
            "resources": {"ports": format!("[{}-{}]", base_port, base_port + 1)},
            "statuses": [status],
        });
        if mode == 2 {
            task["discovery"] = json!({"name": format!("svc-{app}"), "ports": {"ports": [
                {"number": base_port, "name": "http", "protocol": "tcp"},
                {"number": base_port + 1, "name": "metrics", "protocol": "tcp"}]}});
        }
        if let Some(tasks) = frameworks[app % frameworks_n]["tasks"].as_array_mut() {
            tasks.push(task);
        }
    }
    json!({"leader": "master@10.0.0.1:5050", "frameworks": frameworks, "slaves": slaves})
}

/// A cluster shaped like the one in the project's footprint issue: `tasks` running tasks of
/// five instances per app over `frameworks` frameworks and `agents` agents, every task with a
/// container address, a two-port range and a DiscoveryInfo name with one named port. Task 0's
/// name (and service name) is `renamed`, so a benchmark can replace the document with one task
/// renamed.
pub fn uniform_state_value(tasks: usize, frameworks: usize, agents: usize, renamed: &str) -> Value {
    let frameworks = frameworks.max(1);
    let agents = agents.max(1);
    let slaves = agent_values(agents);
    let mut fws: Vec<Value> = (0..frameworks)
        .map(|f| {
            json!({"id": format!("fw-{f}"), "name": format!("framework-{f}"),
                   "pid": format!("scheduler(1)@10.0.0.{}:15101", f + 1), "hostname": "m", "tasks": []})
        })
        .collect();
    for t in 0..tasks {
        let app = t / 5;
        let name = if t == 0 {
            renamed.to_string()
        } else {
            format!("app-{app}")
        };
        let base_port = 31000 + (t % 1000) as u32;
        let task = json!({
            "id": format!("app-{app}.{t:08x}-0000-11ee-8c90-0242ac120002"),
            "name": name,
            "framework_id": format!("fw-{}", app % frameworks),
            "slave_id": format!("20231101-000000-0000000000-5050-0001-S{}", t % agents),
            "state": "TASK_RUNNING",
            "resources": {"ports": format!("[{}-{}]", base_port, base_port + 1)},
            "statuses": [{"state": "TASK_RUNNING", "timestamp": 1700000000.0 + t as f64,
                "container_status": {"network_infos": [{"name": "overlay", "ip_addresses": [
                    {"ip_address": format!("172.{}.{}.{}", 16 + (t >> 16) % 16, (t >> 8) % 256, t % 256)}]}]}}],
            "discovery": {"name": name, "ports": {"ports": [
                {"number": base_port, "name": "http", "protocol": "tcp"}]}},
        });
        if let Some(list) = fws[app % frameworks]["tasks"].as_array_mut() {
            list.push(task);
        }
    }
    json!({"leader": "master@10.0.0.1:5050", "frameworks": fws, "slaves": slaves})
}

#[cfg(test)]
mod tests {
    use crate::mesos::model::State;

    #[test]
    fn generates_the_requested_size() {
        let s = State::from_json(&super::state_json(1000)).unwrap();
        let tasks: usize = s.frameworks.iter().map(|f| f.tasks.len()).sum();
        assert_eq!(tasks, 1000);
        assert_eq!(s.slaves.len(), 51);
    }

    #[test]
    fn uniform_state_has_the_requested_shape() {
        let doc = serde_json::to_vec(&super::uniform_state_value(100, 10, 20, "x")).unwrap();
        let s = State::from_json(&doc).unwrap();
        assert_eq!(s.frameworks.len(), 10);
        assert_eq!(s.slaves.len(), 20);
        let tasks: Vec<_> = s.frameworks.iter().flat_map(|f| &f.tasks).collect();
        assert_eq!(tasks.len(), 100);
        assert!(tasks
            .iter()
            .all(|t| t.is_running() && t.named_discovery().is_some()));
        assert_eq!(tasks.iter().filter(|t| t.name == "x").count(), 1);
    }
}
