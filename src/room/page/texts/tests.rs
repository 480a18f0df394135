use super::*;

#[test]
fn every_language_has_every_text_in_the_same_shape() {
    let catalog = Catalog::load();
    assert_eq!(catalog.languages.len(), LANGUAGES.len(), "every file parses");
    let english = &catalog.get("en");
    assert!(english.len() > 30);
    for language in &catalog.languages {
        let keys: Vec<&String> = language.texts.keys().collect();
        assert_eq!(keys, english.keys().collect::<Vec<_>>(), "{} must have the same keys as en", language.tag);
        for (key, text) in &language.texts {
            let counted = matches!(text, Text::Counted(_));
            assert_eq!(
                counted,
                matches!(english[key], Text::Counted(_)),
                "{}.{key}: plain or counted as in en",
                language.tag
            );
        }
        assert!(language.plurals.is_some(), "{} has plural rules", language.tag);
    }
}

#[test]
fn every_count_finds_its_own_form_in_every_language() {
    let catalog = Catalog::load();
    for language in &catalog.languages {
        let rules = language.plurals.as_ref().unwrap();
        for (key, text) in &language.texts {
            let Text::Counted(forms) = text else { continue };
            assert!(forms.contains_key("other"), "{}.{key}: `other` is always there", language.tag);
            for n in (0..=1_000u64).chain([1_000_000, 2_000_000]) {
                let category = category_name(rules.select(n).unwrap());
                assert!(forms.contains_key(category), "{}.{key}: no `{category}` form (for {n})", language.tag);
            }
        }
    }
}

#[test]
fn polish_has_three_forms_for_whole_numbers() {
    let c = Catalog::load();
    let ahead = |n: u64| c.counted("pl", "ahead", n, &n.to_string());
    assert_eq!(ahead(1), "Przed Tobą jest 1 osoba.");
    for n in [2, 3, 4, 22, 23, 24, 102] {
        assert_eq!(ahead(n), format!("Przed Tobą są {n} osoby."), "{n}");
    }
    for n in [5, 11, 12, 13, 14, 21, 25, 111, 112] {
        assert_eq!(ahead(n), format!("Przed Tobą jest {n} osób."), "{n}");
    }
    assert_eq!(c.counted("en", "ahead", 1, "1"), "1 person is ahead of you.");
    assert_eq!(c.counted("en", "ahead", 2, "2"), "2 people are ahead of you.");
    assert_eq!(c.counted("fr", "waiting", 0, "0"), "0 personne attend.", "French: 0 is singular");
    assert_eq!(c.counted("nl", "waiting", 1234, "1.234"), "1.234 mensen wachten.", "the number as written");
}

#[test]
fn the_language_comes_from_the_query_then_the_header() {
    let c = Catalog::load();
    assert_eq!(c.choose(None, Some("de-DE,de;q=0.9,en;q=0.8")), "de");
    assert_eq!(c.choose(None, Some("sv-SE, en;q=0.5, de;q=0.7")), "de");
    assert_eq!(c.choose(None, Some("sv")), "en");
    assert_eq!(c.choose(None, Some("pl-PL")), "pl");
    assert_eq!(c.choose(None, Some("pt-BR,pt;q=0.9")), "pt");
    assert_eq!(c.choose(None, None), "en");
    assert_eq!(c.choose(Some("en"), Some("de")), "en");
    assert_eq!(c.choose(Some("xx"), Some("fr")), "fr");
    assert_eq!(c.choose(None, Some("de;q=0")), "en");
}
