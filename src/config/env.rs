//! `ANTEROOM_SECTION__KEY=value` overrides, applied to the parsed TOML before typing.

use super::ConfigErrors;

const PREFIX: &str = "ANTEROOM_";

/// Applies overrides to `table`; returns `(section.key, VARIABLE)` for each one applied,
/// so that a bad value can be traced back to the variable that set it.
pub fn apply_overrides(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigErrors> {
    let mut applied = Vec::new();
    let mut problems = Vec::new();
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix(PREFIX) else { continue };
        // ANTEROOM_ADMIN_TOKEN is the documented short form of ANTEROOM_ADMIN__TOKEN.
        let (section, key) = if rest == "ADMIN_TOKEN" {
            ("admin".to_owned(), "token".to_owned())
        } else {
            match rest.split_once("__") {
                Some((s, k)) if !s.is_empty() && !k.is_empty() => (s.to_lowercase(), k.to_lowercase()),
                _ => continue, // ANTEROOM_CONFIG and friends are not config keys
            }
        };
        let entry = table.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            problems.push(format!("{section}: {var} cannot override a key of a non-table value"));
            continue;
        };
        section_table.insert(key.clone(), parse_value(&raw));
        applied.push((format!("{section}.{key}"), var));
    }
    if problems.is_empty() {
        Ok(applied)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// Numbers, booleans and `[...]` arrays are read as TOML; everything else is a string,
/// so `ANTEROOM_ORIGIN__URL=http://shop:8080` needs no quoting.
fn parse_value(raw: &str) -> toml::Value {
    let looks_typed = raw == "true"
        || raw == "false"
        || raw.starts_with('[')
        || (!raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '.'));
    if looks_typed {
        if let Ok(mut t) = format!("v = {raw}").parse::<toml::Table>() {
            if let Some(v) = t.remove("v") {
                return v;
            }
        }
    }
    toml::Value::String(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_type_or_fall_back_to_strings() {
        assert_eq!(parse_value("42"), toml::Value::Integer(42));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("http://a:1"), toml::Value::String("http://a:1".into()));
        assert_eq!(parse_value("30s"), toml::Value::String("30s".into()));
        assert!(parse_value("[\"10.0.0.0/8\"]").is_array());
    }
}
