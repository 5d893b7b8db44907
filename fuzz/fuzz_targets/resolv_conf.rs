//! Any bytes as a resolv.conf: upstream selection and the file we would write from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mesos_dns_sidecar::resolv::parse_resolv_conf(data);
    let text = String::from_utf8_lossy(data);
    let _ = mesos_dns_sidecar::resolvconf::render(&text, &["127.0.0.1".to_string()], std::path::Path::new("/saved"));
});
