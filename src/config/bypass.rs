//! The `bypass` entries of a room: path prefixes, extensions (bare or under a prefix) and
//! client networks, parsed once at load.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One parsed `bypass` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BypassRule {
    /// `/static/`: everything under the prefix, any method.
    Prefix(String),
    /// `.css`: files with this extension anywhere in the room, `GET`/`HEAD` only.
    Extension(String),
    /// `/static/*.css`: files with this extension under the prefix, `GET`/`HEAD` only.
    ScopedExtension { prefix: String, extension: String },
    /// `10.0.0.0/8`: clients from this network.
    Network(IpNet),
}

impl BypassRule {
    pub fn parse(entry: &str) -> Result<Self, String> {
        let extension = |ext: &str| {
            (!ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric())).then(|| ext.to_ascii_lowercase())
        };
        if entry.starts_with('/') {
            if let Some((prefix, ext)) = entry.rsplit_once("/*.") {
                return match extension(ext) {
                    Some(extension) => {
                        let prefix = if prefix.is_empty() { "/" } else { prefix };
                        Ok(BypassRule::ScopedExtension { prefix: prefix.to_owned(), extension })
                    }
                    None => Err(format!("`{entry}`: write a scoped extension as /prefix/*.css")),
                };
            }
            if entry.contains('*') {
                return Err(format!("`{entry}`: a wildcard is only allowed as /prefix/*.ext"));
            }
            return Ok(BypassRule::Prefix(entry.to_owned()));
        }
        if let Some(ext) = entry.strip_prefix("*.").or_else(|| entry.strip_prefix('.')) {
            if let Some(extension) = extension(ext) {
                return Ok(BypassRule::Extension(extension));
            }
        }
        if let Ok(net) = entry.parse::<IpNet>() {
            return Ok(BypassRule::Network(net));
        }
        if let Ok(ip) = entry.parse::<std::net::IpAddr>() {
            return Ok(BypassRule::Network(IpNet::from(ip)));
        }
        Err(format!(
            "`{entry}` is neither a path prefix (/static/), an extension (.css, /static/*.css) nor a network (10.0.0.0/8)"
        ))
    }
}

/// A room's `bypass` list, parsed once at load. An entry that does not parse is kept as a
/// problem, and validation reports every one with the room's name: none is dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BypassList {
    entries: Vec<String>,
    rules: Vec<BypassRule>,
    problems: Vec<String>,
}

impl BypassList {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Self {
        let mut list = BypassList::default();
        for entry in entries {
            let entry = entry.as_ref();
            list.entries.push(entry.to_owned());
            match BypassRule::parse(entry) {
                Ok(rule) => list.rules.push(rule),
                Err(problem) => list.problems.push(problem),
            }
        }
        list
    }

    /// The entries that did not parse, each with why (validation reports them).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The rules; complete once the config has passed validation.
    pub fn rules(&self) -> &[BypassRule] {
        &self.rules
    }
}

impl<'de> Deserialize<'de> for BypassList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BypassList::parse(&Vec::<String>::deserialize(d)?))
    }
}

impl Serialize for BypassList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_entries_are_prefixes_extensions_or_networks() {
        assert_eq!(BypassRule::parse("/static/"), Ok(BypassRule::Prefix("/static/".into())));
        assert_eq!(BypassRule::parse("*.CSS"), Ok(BypassRule::Extension("css".into())));
        assert_eq!(BypassRule::parse(".js"), Ok(BypassRule::Extension("js".into())));
        assert!(matches!(BypassRule::parse("10.0.0.0/8"), Ok(BypassRule::Network(_))));
        assert!(matches!(BypassRule::parse("192.0.2.7"), Ok(BypassRule::Network(_))));
        assert_eq!(
            BypassRule::parse("/tickets/static/*.PNG"),
            Ok(BypassRule::ScopedExtension { prefix: "/tickets/static".into(), extension: "png".into() })
        );
        assert!(BypassRule::parse("static").is_err());
        assert!(BypassRule::parse("/static/*").is_err());
        assert!(BypassRule::parse("/static/*.c-s-s").is_err());
    }
}
