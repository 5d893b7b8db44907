//! Cluster state: the typed Mesos master state document and the sources that deliver it
//! (built from the configuration by [`source::from_config`]).

pub mod demo;
pub mod file;
pub mod hosts;
pub mod http_client;
pub mod master;
pub mod masters;
pub mod mesos_dns;
pub mod model;
pub mod relay;
pub mod source;
pub mod stream;
pub mod synthetic;
pub mod zk;
