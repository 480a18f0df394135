//! Per-client caps (`max_places_per_client`): the client as the room counts its places —
//! an IPv4 address, or an IPv6 /64 (one subscriber's network: a single host can take
//! any address of it), after `trusted_proxies`.

use std::net::IpAddr;

/// The key a client's places are counted under.
pub(crate) fn client_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        // An IPv4-mapped address is that IPv4 client.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let network = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", std::net::Ipv6Addr::from(network))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> String {
        client_key(text.parse().unwrap())
    }

    #[test]
    fn ipv4_clients_are_counted_by_address_and_ipv6_clients_by_their_64() {
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::1"), "one network, one client");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7", "IPv4-mapped is the IPv4 client");
    }
}
