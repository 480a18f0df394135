//! Which room a request belongs to, and whether it skips the queue.
//!
//! Routing works on a normalized path, so that spellings the origin may treat as the same
//! page (`/Tickets`, `/x/../tickets`, `//tickets`, `/tick%65ts`, `\tickets`,
//! `/tickets;jsessionid=1`) cannot walk around a room. Erring towards "protected" is safe;
//! the origin still receives the path exactly as the client sent it.

use crate::config::BypassRule;
use std::net::IpAddr;

/// Lowercased, percent-decoded, `\` read as `/`, empty and `.` segments dropped, `..`
/// applied, `;parameters` cut from each segment. Always starts with `/`.
pub fn normalize_path(raw: &str) -> String {
    let decoded = percent_decode(raw).replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() {
        path.push('/');
    }
    path.to_lowercase()
}

pub(crate) fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Does the normalized `path` lie under the normalized `prefix`, segment-wise?
pub fn covers(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path == prefix
        || (path.len() > prefix.len() && path.starts_with(prefix) && path.as_bytes()[prefix.len()] == b'/')
}

/// The host name of a `Host` header value or URI authority: lowercased, port removed.
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .map_or(host, |(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host })
            .to_owned()
    };
    name.to_ascii_lowercase()
}

/// Does a bypass rule let this request skip the queue? `path` and the rules' prefixes are
/// normalized.
pub fn bypassed(rules: &[BypassRule], path: &str, client: IpAddr) -> bool {
    rules.iter().any(|rule| match rule {
        BypassRule::Prefix(prefix) => covers(prefix, path),
        BypassRule::Extension(ext) => {
            path.rsplit('/').next().and_then(|last| last.rsplit_once('.')).is_some_and(|(_, e)| e == ext)
        }
        BypassRule::Network(net) => net.contains(&client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_normalize_alike() {
        for raw in [
            "/tickets/1",
            "/Tickets/1",
            "//tickets//1",
            "/x/../tickets/1",
            "/tick%65ts/1",
            "\\tickets\\1",
            "/tickets;jsessionid=9/1",
            "/./tickets/1/",
        ] {
            assert_eq!(normalize_path(raw), "/tickets/1", "{raw}");
        }
        assert_eq!(normalize_path("/../../"), "/");
        assert_eq!(normalize_path("/%zz"), "/%zz");
        assert_eq!(normalize_path("/a%"), "/a%");
    }

    #[test]
    fn prefixes_cover_whole_segments() {
        assert!(covers("/tickets", "/tickets"));
        assert!(covers("/tickets", "/tickets/42"));
        assert!(!covers("/tickets", "/ticketsx"));
        assert!(covers("/", "/anything"));
    }

    #[test]
    fn bypass_by_prefix_extension_or_network() {
        let rules: Vec<BypassRule> =
            ["/static", ".css", "10.0.0.0/8"].iter().map(|r| BypassRule::parse(r).unwrap()).collect();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(bypassed(&rules, "/static/app.js", outside));
        assert!(bypassed(&rules, "/tickets/site.css", outside));
        assert!(!bypassed(&rules, "/tickets/buy", outside));
        assert!(!bypassed(&rules, "/staticx/buy", outside));
        assert!(!bypassed(&rules, &normalize_path("/tickets/buy;x.css"), outside));
        assert!(bypassed(&rules, "/tickets/buy", "10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("Shop.Example:8080"), "shop.example");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("shop.example"), "shop.example");
    }
}
