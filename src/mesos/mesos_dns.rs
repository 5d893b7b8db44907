//! The `mesos-dns` source: an existing Mesos-DNS server's zone, from its `/v1/axfr`.
//!
//! For sites that run Mesos-DNS centrally: the sidecar can be rolled out first, serving exactly
//! the zone Mesos-DNS serves, and switched to the masters later. The zone is polled every
//! `refreshSeconds`; an unchanged serial costs no rebuild.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tracing::{info, warn};

use crate::publish::Publisher;
use crate::records::{build_from_records, ListedRecord, RecordSettings};

/// Mesos-DNS's AXFR model (`models.AXFR`).
#[derive(Debug, Deserialize)]
pub struct Axfr {
    /// Zone serial.
    #[serde(rename = "Serial", default)]
    pub serial: u64,
    /// Zone domain.
    #[serde(rename = "Domain", default)]
    pub domain: String,
    /// Records by type.
    #[serde(rename = "Records", default)]
    pub records: AxfrRecords,
}

/// The record maps of an AXFR: name -> values.
#[derive(Debug, Default, Deserialize)]
pub struct AxfrRecords {
    /// A records.
    #[serde(rename = "As", default)]
    pub a: Option<HashMap<String, Vec<String>>>,
    /// AAAA records.
    #[serde(rename = "AAAAs", default)]
    pub aaaa: Option<HashMap<String, Vec<String>>>,
    /// SRV records, values `target:port`.
    #[serde(rename = "SRVs", default)]
    pub srv: Option<HashMap<String, Vec<String>>>,
}

impl Axfr {
    /// The records, lowercased, skipping values that don't parse.
    pub fn listed(&self) -> Vec<ListedRecord> {
        let fq = |n: &str| {
            let mut n = n.to_ascii_lowercase();
            if !n.ends_with('.') {
                n.push('.');
            }
            n
        };
        let mut out = Vec::new();
        for (name, ips) in self.records.a.iter().flatten() {
            out.extend(
                ips.iter()
                    .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
                    .map(|ip| ListedRecord::A(fq(name), ip)),
            );
        }
        for (name, ips) in self.records.aaaa.iter().flatten() {
            out.extend(
                ips.iter()
                    .filter_map(|ip| ip.parse::<Ipv6Addr>().ok())
                    .map(|ip| ListedRecord::Aaaa(fq(name), ip)),
            );
        }
        for (name, targets) in self.records.srv.iter().flatten() {
            for t in targets {
                if let Some((host, port)) = t
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                {
                    out.push(ListedRecord::Srv(fq(name), fq(host), port));
                }
            }
        }
        out
    }
}

/// Polls `base` (e.g. `http://mesos-dns:8123`) forever.
pub async fn follow(
    base: String,
    publisher: Arc<Publisher>,
    settings: RecordSettings,
    refresh: Duration,
    timeout: Duration,
) {
    let client = match super::http_client::builder(base.starts_with("https://"), &[])
        .timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build the Mesos-DNS client");
            return;
        }
    };
    let url = format!("{}/v1/axfr", base.trim_end_matches('/'));
    let mut last_serial = None;
    let mut failing = false;
    loop {
        let result = async {
            let resp = client.get(&url).send().await?.error_for_status()?;
            resp.json::<Axfr>().await
        }
        .await;
        match result {
            Ok(axfr) => {
                if failing {
                    info!(%base, "Mesos-DNS reachable again");
                    failing = false;
                }
                if axfr.domain.trim_end_matches('.') != settings.domain {
                    warn!(theirs = %axfr.domain, ours = %settings.domain, "Mesos-DNS serves another domain; names outside ours are dropped");
                }
                if last_serial != Some(axfr.serial) {
                    let serial = publisher.next_serial();
                    match build_from_records(&axfr.listed(), &settings, serial) {
                        Ok(snapshot) => {
                            info!(
                                names = snapshot.stats.names,
                                serial = axfr.serial,
                                "zone copied from Mesos-DNS"
                            );
                            publisher.publish_snapshot(snapshot);
                            last_serial = Some(axfr.serial);
                        }
                        Err(e) => publisher.fetch_failed(&e.to_string()),
                    }
                } else {
                    // Mesos-DNS still serves the zone we copied: not stale.
                    publisher.confirm();
                }
            }
            Err(e) => {
                publisher.fetch_failed(&e.to_string());
                if !failing {
                    warn!(%base, error = %e, "cannot fetch the zone from Mesos-DNS; keeping the last snapshot");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(refresh).await;
    }
}
