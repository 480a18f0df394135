//! The page's texts, one TOML file per language, and choosing the language: `?lang=`
//! first, then `Accept-Language` (by quality), then English.

use std::collections::BTreeMap;

/// Every supported language: its tag and its texts. Adding one is a file and a line.
const LANGUAGES: [(&str, &str); 2] = [("en", include_str!("texts/en.toml")), ("de", include_str!("texts/de.toml"))];

pub(crate) type Texts = BTreeMap<String, String>;

/// All languages' texts, parsed once.
#[derive(Debug)]
pub(crate) struct Catalog {
    languages: Vec<(&'static str, Texts)>,
}

impl Catalog {
    pub(crate) fn load() -> Self {
        let languages = LANGUAGES
            .iter()
            .map(|(tag, text)| {
                // The files are part of the binary and checked by a test: a parse error is a
                // build defect, so an empty table (English keys missing) is never reached.
                let texts: Texts = toml::from_str(text).unwrap_or_default();
                (*tag, texts)
            })
            .collect();
        Self { languages }
    }

    pub(crate) fn get(&self, lang: &str) -> &Texts {
        self.languages.iter().find(|(tag, _)| *tag == lang).map_or(&self.languages[0].1, |(_, texts)| texts)
    }

    /// The language for a request: `?lang=` if supported, else the best of
    /// `Accept-Language`, else English.
    pub(crate) fn choose(&self, query_lang: Option<&str>, accept_language: Option<&str>) -> &'static str {
        let supported = |tag: &str| {
            let primary = tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
            self.languages.iter().map(|(t, _)| *t).find(|t| *t == primary)
        };
        if let Some(lang) = query_lang.and_then(supported) {
            return lang;
        }
        let mut best: Option<(&'static str, f32)> = None;
        for part in accept_language.unwrap_or("").split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let quality =
                pieces.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
            if let Some(lang) = supported(tag) {
                if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
                    best = Some((lang, quality));
                }
            }
        }
        best.map_or("en", |(lang, _)| lang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_text() {
        let catalog = Catalog::load();
        let english: Vec<&String> = catalog.get("en").keys().collect();
        assert!(english.len() > 20);
        for (tag, texts) in &catalog.languages {
            assert_eq!(texts.keys().collect::<Vec<_>>(), english, "{tag} must have the same keys as en");
        }
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_header() {
        let c = Catalog::load();
        assert_eq!(c.choose(None, Some("de-DE,de;q=0.9,en;q=0.8")), "de");
        assert_eq!(c.choose(None, Some("fr-FR, en;q=0.5, de;q=0.7")), "de");
        assert_eq!(c.choose(None, Some("fr")), "en");
        assert_eq!(c.choose(None, None), "en");
        assert_eq!(c.choose(Some("en"), Some("de")), "en");
        assert_eq!(c.choose(Some("xx"), Some("de")), "de");
        assert_eq!(c.choose(None, Some("de;q=0")), "en");
    }
}
