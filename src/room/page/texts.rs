//! The page's texts, one TOML file per language, and choosing the language: `?lang=`
//! first, then `Accept-Language` (by quality), then English. Counts take the plural form
//! of the language's rules (Unicode CLDR, as the browser's `Intl.PluralRules`), so Polish
//! says "2 osoby" and "5 osób".

use intl_pluralrules::{PluralCategory, PluralRuleType, PluralRules};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every supported language: its tag and its texts. Adding one is a file and a line.
const LANGUAGES: [(&str, &str); 8] = [
    ("en", include_str!("texts/en.toml")),
    ("de", include_str!("texts/de.toml")),
    ("fr", include_str!("texts/fr.toml")),
    ("es", include_str!("texts/es.toml")),
    ("it", include_str!("texts/it.toml")),
    ("nl", include_str!("texts/nl.toml")),
    ("pl", include_str!("texts/pl.toml")),
    ("pt", include_str!("texts/pt.toml")),
];

/// A text, or the forms of a text with a count (`one`, `few`, `many`, `other`, …).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum Text {
    Plain(String),
    Counted(BTreeMap<String, String>),
}

pub(crate) type Texts = BTreeMap<String, Text>;

/// One language: its texts and its plural rules.
struct Language {
    tag: &'static str,
    texts: Texts,
    plurals: Option<PluralRules>,
    /// The texts the page's script uses, as JSON for a `<script>` element, made once.
    script: String,
}

impl std::fmt::Debug for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Language").field("tag", &self.tag).finish_non_exhaustive()
    }
}

/// All languages' texts, parsed once.
#[derive(Debug)]
pub(crate) struct Catalog {
    languages: Vec<Language>,
}

impl Catalog {
    pub(crate) fn load() -> Self {
        let languages = LANGUAGES
            .iter()
            .map(|(tag, text)| {
                // The files are part of the binary and checked by a test: a parse error is a
                // build defect, so an empty table (English keys missing) is never reached.
                let texts: Texts = toml::from_str(text).unwrap_or_default();
                let plurals = tag
                    .parse::<unic_langid::LanguageIdentifier>()
                    .ok()
                    .and_then(|id| PluralRules::create(id, PluralRuleType::CARDINAL).ok());
                let script = script_json(&texts);
                Language { tag, texts, plurals, script }
            })
            .collect();
        Self { languages }
    }

    fn language(&self, lang: &str) -> &Language {
        self.languages.iter().find(|l| l.tag == lang).unwrap_or(&self.languages[0])
    }

    pub(crate) fn get(&self, lang: &str) -> &Texts {
        &self.language(lang).texts
    }

    /// The texts the page's script needs (not the error pages'), as JSON safe inside a
    /// `<script>` element.
    pub(crate) fn script_texts(&self, lang: &str) -> &str {
        &self.language(lang).script
    }

    /// A plain text (empty if missing; a counted one gives its `other` form).
    pub(crate) fn text(&self, lang: &str, key: &str) -> String {
        match self.get(lang).get(key) {
            Some(Text::Plain(text)) => text.clone(),
            Some(Text::Counted(forms)) => forms.get("other").cloned().unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The form of `key` for the count `n` in `lang`, with `{n}` written as given.
    pub(crate) fn counted(&self, lang: &str, key: &str, n: u64, written: &str) -> String {
        let language = self.language(lang);
        let form = match language.texts.get(key) {
            Some(Text::Counted(forms)) => {
                let category = language.plurals.as_ref().and_then(|rules| rules.select(n).ok());
                let name = category.map_or("other", category_name);
                forms.get(name).or_else(|| forms.get("other")).cloned().unwrap_or_default()
            }
            Some(Text::Plain(text)) => text.clone(),
            None => String::new(),
        };
        form.replace("{n}", written)
    }

    /// The language for a request: `?lang=` if supported, else the best of
    /// `Accept-Language`, else English.
    pub(crate) fn choose(&self, query_lang: Option<&str>, accept_language: Option<&str>) -> &'static str {
        let supported = |tag: &str| {
            let primary = tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
            self.languages.iter().map(|l| l.tag).find(|t| *t == primary)
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

/// JSON inside `<script>`: `<` escaped so no text can close the element.
fn script_json(texts: &Texts) -> String {
    let used: BTreeMap<&String, &Text> = texts.iter().filter(|(key, _)| !key.starts_with("error_")).collect();
    serde_json::to_string(&used).unwrap_or_default().replace('<', "\\u003c")
}

/// CLDR's name of a plural category, as the texts and `Intl.PluralRules` spell it.
fn category_name(category: PluralCategory) -> &'static str {
    match category {
        PluralCategory::ZERO => "zero",
        PluralCategory::ONE => "one",
        PluralCategory::TWO => "two",
        PluralCategory::FEW => "few",
        PluralCategory::MANY => "many",
        PluralCategory::OTHER => "other",
    }
}

#[cfg(test)]
mod tests;
