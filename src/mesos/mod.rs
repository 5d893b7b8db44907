//! Cluster state: the typed Mesos master state document and the sources that deliver it.

pub mod demo;
pub mod file;
pub mod hosts;
pub mod http_client;
pub mod master;
pub mod mesos_dns;
pub mod model;
pub mod relay;
pub mod stream;
pub mod synthetic;
pub mod zk;
