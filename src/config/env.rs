//! `ANTEROOM_SECTION__KEY=value` overrides, applied to the parsed TOML before typing.

use super::ConfigErrors;

const PREFIX: &str = "ANTEROOM_";

/// Applies overrides to `table`; returns `(section.key, VARIABLE)` for each one applied,
/// so that a bad value can be traced back to the variable that set it.
pub(super) fn apply_overrides(
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
        if section == "rooms" {
            match override_room(table, &key, &raw) {
                Ok(applied_key) => applied.push((applied_key, var)),
                Err(problem) => problems.push(format!("rooms: {var} {problem}")),
            }
            continue;
        }
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

/// `ANTEROOM_ROOMS__SALE__ADMIT_PER_MINUTE`: rooms are a list, so the variable names the
/// room (`-` written as `_`) and then the key.
fn override_room(table: &mut toml::Table, name_and_key: &str, raw: &str) -> Result<String, String> {
    let Some((name, key)) = name_and_key.split_once("__") else {
        return Err("must name a room and a key: ANTEROOM_ROOMS__NAME__KEY".into());
    };
    let rooms =
        table.get_mut("rooms").and_then(toml::Value::as_array_mut).ok_or("names a room, but none is configured")?;
    let same = |candidate: &str| candidate.replace('-', "_").eq_ignore_ascii_case(name);
    let (index, room) = rooms
        .iter_mut()
        .filter_map(toml::Value::as_table_mut)
        .enumerate()
        .find(|(_, room)| room.get("name").and_then(toml::Value::as_str).is_some_and(same))
        .ok_or_else(|| format!("names no configured room (`{name}`)"))?;
    room.insert(key.to_owned(), parse_value(raw));
    // As serde names the key, so that a bad value is traced back to the variable.
    Ok(format!("rooms[{index}].{key}"))
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
    fn a_room_is_overridden_by_its_name() {
        let mut table: toml::Table = "[[rooms]]\nname = \"big-sale\"\npaths = [\"/\"]".parse().unwrap();
        let vars = [("ANTEROOM_ROOMS__BIG_SALE__ADMIT_PER_MINUTE".to_owned(), "90".to_owned())];
        let applied = apply_overrides(&mut table, vars).unwrap();
        assert_eq!(applied[0].0, "rooms[0].admit_per_minute");
        assert_eq!(table["rooms"][0]["admit_per_minute"], toml::Value::Integer(90));
        let vars = [("ANTEROOM_ROOMS__NOPE__ADMIT_PER_MINUTE".to_owned(), "90".to_owned())];
        let problems = apply_overrides(&mut table, vars).unwrap_err();
        assert!(problems.0[0].contains("names no configured room"), "{problems}");
    }

    #[test]
    fn values_keep_their_type_or_fall_back_to_strings() {
        assert_eq!(parse_value("42"), toml::Value::Integer(42));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("http://a:1"), toml::Value::String("http://a:1".into()));
        assert_eq!(parse_value("30s"), toml::Value::String("30s".into()));
        assert!(parse_value("[\"10.0.0.0/8\"]").is_array());
    }
}
