//! The `mesos-dns` source: an existing Mesos-DNS server's zone, from its `/v1/axfr`.
//!
//! For sites that run Mesos-DNS centrally: the sidecar can be rolled out first, serving exactly
//! the zone Mesos-DNS serves, and switched to the masters later. The zone is polled every
//! `refreshSeconds`; an unchanged serial costs no rebuild. Like every source, a document larger
//! than `maxStateBytes` is refused.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Url};
use serde::Deserialize;
use tracing::{info, warn};

use super::source::{self, read_capped, BodyError, Reachability};
use crate::config::Config;
use crate::publish::Publisher;
use crate::records::{build_from_records, ListedRecord};

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

/// Why one copy of the zone failed.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// HTTP failure or an error status.
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// The body could not be read whole (connection lost, or over `maxStateBytes`).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body is not Mesos-DNS's AXFR document.
    #[error("bad /v1/axfr document: {0}")]
    Document(#[from] serde_json::Error),
}

/// The `mesosDns` source: copies the zone of the Mesos-DNS at a base URL.
pub struct MesosDns {
    base: String,
    url: String,
    client: Client,
    refresh: Duration,
    max_bytes: u64,
}

impl MesosDns {
    /// The source for the Mesos-DNS at `base` (the `mesosDns` key, e.g.
    /// `http://mesos-dns:8123`), polled every
    /// `refreshSeconds`, each request limited by `stateTimeoutSeconds` (at most a minute) and
    /// each document by `maxStateBytes`.
    pub fn from_config(base: &Url, config: &Config) -> Result<MesosDns, reqwest::Error> {
        let client = super::http_client::builder(base.scheme() == "https", &[])
            .timeout(source::request_timeout(config))
            .build()?;
        Ok(MesosDns {
            url: format!("{}/v1/axfr", base.as_str().trim_end_matches('/')),
            base: base.to_string(),
            client,
            refresh: Duration::from_secs(config.refresh_seconds),
            max_bytes: config.max_state_bytes,
        })
    }

    /// One copy of the zone.
    pub async fn fetch(&self) -> Result<Axfr, ZoneError> {
        let resp = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        let body = read_capped(resp, self.max_bytes).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Polls the zone forever; an unchanged serial costs no rebuild and confirms the served
    /// snapshot.
    pub async fn run(self, publisher: Arc<Publisher>) {
        info!(base = %self.base, "copying the zone of an existing Mesos-DNS");
        let settings = publisher.settings().clone();
        let mut reach = Reachability::new("Mesos-DNS", self.base.clone());
        let mut last_serial = None;
        loop {
            match self.fetch().await {
                Ok(axfr) => {
                    reach.reached();
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
                Err(e) => reach.failed(&publisher, &e),
            }
            tokio::time::sleep(self.refresh).await;
        }
    }
}
