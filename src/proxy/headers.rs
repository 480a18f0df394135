//! Header hygiene between client and origin: hop-by-hop removal, forwarding headers,
//! and which client-supplied headers may be believed.

use crate::server::Peer;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use std::net::IpAddr;

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// Headers only a trusted proxy may send (X-Forwarded-For is replaced separately).
static SPOOFABLE: [HeaderName; 4] =
    [X_FORWARDED_PROTO, X_FORWARDED_HOST, header::FORWARDED, HeaderName::from_static("x-real-ip")];

pub(crate) fn is_trusted(ip: IpAddr, trusted_proxies: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted_proxies.iter().any(|net| net.contains(&ip))
}

/// Headers that describe one connection, never the message (RFC 9110 §7.6.1), plus
/// the proxy credentials meant for us alone.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Where `name` is in [`HOP_BY_HOP`]. Matched as text: cheaper than comparing it with
/// each of the nine names.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    Some(match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
/// `Upgrade` goes too: tunnels put it back explicitly.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, noting which are present without allocating: nearly every
    // answer carries `Connection: keep-alive` and nothing else of the kind, and this runs
    // twice per request. Only what is present is removed (each removal hashes).
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    let named: Vec<HeaderName> = if present & 1 == 0 {
        Vec::new()
    } else {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|name| !name.eq_ignore_ascii_case("close") && !name.eq_ignore_ascii_case("keep-alive"))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect()
    };
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    for name in named {
        headers.remove(name);
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host` for the origin. A trusted proxy's values are kept
/// and extended; anyone else's are replaced, so a client cannot pick its own address.
pub(crate) fn set_forwarding(headers: &mut HeaderMap, peer: &Peer, trusted: bool, host: Option<&HeaderValue>) {
    let chain: Vec<&str> = if trusted {
        headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect()
    } else {
        Vec::new()
    };
    let forwarded_for = if chain.is_empty() {
        peer.ip_header().clone()
    } else {
        HeaderValue::from_str(&format!("{}, {}", chain.join(", "), peer.ip_text())).unwrap_or(peer.ip_header().clone())
    };
    if !trusted && headers.keys().any(|name| SPOOFABLE.contains(name)) {
        for name in &SPOOFABLE {
            headers.remove(name);
        }
    }
    // Up to three more entries: room made once rather than grown on each insert.
    headers.reserve(3);
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    // One lookup each (`entry`), not a look and then an insert.
    headers.entry(X_FORWARDED_PROTO).or_insert_with(|| HeaderValue::from_static(peer.scheme()));
    if let Some(host) = host {
        headers.entry(X_FORWARDED_HOST).or_insert_with(|| host.clone());
    }
}

/// The client's address: the peer, or — behind trusted proxies — the right-most address
/// in `X-Forwarded-For` that is not itself a trusted proxy.
pub(crate) fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted_proxies) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    chain.into_iter().rev().find(|ip| !is_trusted(*ip, trusted_proxies)).unwrap_or(peer)
}

/// True when the request asks to switch protocols (WebSocket and the like). A lone
/// `h2c` upgrade is not counted: a server may simply answer it in HTTP/1.1.
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|proto| !proto.trim().eq_ignore_ascii_case("h2c"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn every_hop_by_hop_name_is_found_where_it_stands() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
        }
        assert_eq!(hop_by_hop_index(&header::HOST), None);
        let mut h = map(&HOP_BY_HOP.iter().map(|n| (n.as_str(), "1")).collect::<Vec<_>>());
        h.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), [header::ACCEPT]);
    }

    #[test]
    fn headers_named_in_connection_are_removed_too() {
        let mut h =
            map(&[("connection", "close, x-secret"), ("x-secret", "1"), ("keep-alive", "5"), ("accept", "*/*")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn an_untrusted_client_cannot_choose_its_forwarded_address() {
        let peer = Peer::new("203.0.113.9:5000".parse().unwrap(), false);
        let mut h =
            map(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "https"), ("forwarded", "for=1.2.3.4")]);
        set_forwarding(&mut h, &peer, false, Some(&HeaderValue::from_static("shop.example")));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert!(!h.contains_key("forwarded"));
    }

    #[test]
    fn a_trusted_proxy_chain_is_extended() {
        let peer = Peer::new("10.0.0.2:5000".parse().unwrap(), true);
        let mut h = map(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https")]);
        set_forwarding(&mut h, &peer, true, None);
        assert_eq!(h["x-forwarded-for"], "198.51.100.7, 10.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn the_client_ip_is_the_rightmost_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = map(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(client_ip(&h, "10.0.0.2".parse().unwrap(), &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&h, "203.0.113.1".parse().unwrap(), &trusted), "203.0.113.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn h2c_alone_is_not_an_upgrade_but_websocket_is() {
        assert!(!wants_upgrade(&map(&[("upgrade", "h2c")])));
        assert!(wants_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!wants_upgrade(&map(&[])));
    }
}
