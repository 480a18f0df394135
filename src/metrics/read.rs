//! Reading back the Prometheus text anteroom itself exports, for the tools that watch a
//! running gateway from outside (the demo's summary line, `rehearse --admin`): lines of
//! `name{labels} value`, comments skipped. Only anteroom's own output is read, so a line
//! that does not parse is skipped, not an error.

/// One series' value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Series<'a> {
    pub name: &'a str,
    /// What is between the braces, as written (`room="sale",le="0.1"`).
    pub labels: &'a str,
    pub value: f64,
}

impl<'a> Series<'a> {
    /// The value of label `key`; anteroom's label values hold no quotes or commas.
    pub(crate) fn label(&self, key: &str) -> Option<&'a str> {
        self.labels.split(',').find_map(|pair| pair.strip_prefix(key)?.strip_prefix("=\"")?.strip_suffix('"'))
    }
}

pub(crate) fn series(text: &str) -> impl Iterator<Item = Series<'_>> {
    text.lines().filter(|line| !line.starts_with('#')).filter_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let value = value.parse().ok()?;
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        Some(Series { name, labels, value })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_labels_are_read_and_junk_is_skipped() {
        let text = "# TYPE x counter\nanteroom_x{room=\"sale\",le=\"+Inf\"} 12\nanteroom_y 1.5\njunk\nanteroom_z{a=\"b\"} nan?\n";
        let all: Vec<Series<'_>> = series(text).collect();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].name, all[0].value), ("anteroom_x", 12.0));
        assert_eq!((all[0].label("room"), all[0].label("le"), all[0].label("r")), (Some("sale"), Some("+Inf"), None));
        assert_eq!((all[1].name, all[1].labels, all[1].value), ("anteroom_y", "", 1.5));
    }
}
