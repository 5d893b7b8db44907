//! The host's own addresses, for the name server record when listening on every interface.

use std::net::IpAddr;

/// Every non-loopback address on the host's interfaces, as Mesos-DNS publishes for its name
/// server name when its listener is 0.0.0.0.
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in addrs {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// The name server addresses for a listen address: the address itself, or every local address
/// when it is unspecified.
pub fn listener_addresses(listener: IpAddr) -> Vec<IpAddr> {
    if listener.is_unspecified() {
        local_addresses()
    } else {
        vec![listener]
    }
}

/// Every subnet directly attached to a local interface that is up (address and netmask), for
/// the default client access rule: hosts on these subnets are on the same link as this host.
pub fn attached_subnets() -> Vec<crate::dns::access::Prefix> {
    use crate::dns::access::Prefix;
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<Prefix> = Vec::new();
    for ifa in addrs {
        if !ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP) {
            continue;
        }
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let prefix = if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            Prefix::new(IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones() as u8)
        } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            Prefix::new(IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones() as u8)
        } else {
            continue;
        };
        if !out.contains(&prefix) {
            out.push(prefix);
        }
    }
    out
}
