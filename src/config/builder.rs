//! Building a `Config` in code: the same defaults and the same validation as a file, with
//! typed values instead of TOML text. The tests use it; so can a program that embeds
//! anteroom.

use super::{Admin, Config, ConfigErrors, Limits, Listen, Origin, RoomConfig, StoreConfig, Tokens};

/// A `Config` under construction; [`build`](ConfigBuilder::build) validates it.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    config: Config,
}

impl Config {
    /// A config in front of the origin at `origin_url` (`http://host:port`), every other
    /// key at its default.
    pub fn builder(origin_url: &str) -> ConfigBuilder {
        let origin = toml::Table::from_iter([("url".to_owned(), toml::Value::from(origin_url))]);
        let table = toml::Table::from_iter([("origin".to_owned(), toml::Value::Table(origin))]);
        // Through serde, so that every default is the one a file gets.
        let config = toml::Value::Table(table).try_into().unwrap_or_else(|e| panic!("the defaults must load: {e}"));
        ConfigBuilder { config }
    }
}

impl RoomConfig {
    /// A room protecting `paths`, every other key at its default.
    pub fn new(name: &str, paths: &[&str]) -> Self {
        let paths = toml::Value::Array(paths.iter().map(|p| toml::Value::from(*p)).collect());
        let table = toml::Table::from_iter([("name".to_owned(), toml::Value::from(name)), ("paths".to_owned(), paths)]);
        toml::Value::Table(table).try_into().unwrap_or_else(|e| panic!("the room defaults must load: {e}"))
    }
}

impl ConfigBuilder {
    pub fn listen(mut self, set: impl FnOnce(&mut Listen)) -> Self {
        set(&mut self.config.listen);
        self
    }

    pub fn origin(mut self, set: impl FnOnce(&mut Origin)) -> Self {
        set(&mut self.config.origin);
        self
    }

    pub fn limits(mut self, set: impl FnOnce(&mut Limits)) -> Self {
        set(&mut self.config.limits);
        self
    }

    pub fn tokens(mut self, set: impl FnOnce(&mut Tokens)) -> Self {
        set(&mut self.config.tokens);
        self
    }

    pub fn admin(mut self, set: impl FnOnce(&mut Admin)) -> Self {
        set(&mut self.config.admin);
        self
    }

    pub fn store(mut self, set: impl FnOnce(&mut StoreConfig)) -> Self {
        set(&mut self.config.store);
        self
    }

    /// Adds a room protecting `paths`; `set` changes its keys from their defaults.
    pub fn room(mut self, name: &str, paths: &[&str], set: impl FnOnce(&mut RoomConfig)) -> Self {
        let mut room = RoomConfig::new(name, paths);
        set(&mut room);
        self.config.rooms.push(room);
        self
    }

    /// The config, if it is valid: the same checks as a file's (`rooms[NAME].key: problem`).
    pub fn build(self) -> Result<Config, ConfigErrors> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BypassList, HumanDuration};

    #[test]
    fn a_built_config_has_the_defaults_of_a_file() {
        let built = Config::builder("http://shop:8080").room("sale", &["/tickets"], |_| {}).build().unwrap();
        let text = "[origin]\nurl = \"http://shop:8080\"\n[[rooms]]\nname = \"sale\"\npaths = [\"/tickets\"]\n";
        let loaded = Config::from_toml(text, []).unwrap();
        assert_eq!(built.to_masked_toml(), loaded.to_masked_toml());
    }

    #[test]
    fn a_built_config_is_validated_like_a_file() {
        let problems = Config::builder("http://shop:8080")
            .room("sale", &["/tickets"], |room| {
                room.admit_per_minute = 0;
                room.session_duration = HumanDuration::secs(1);
                room.bypass = BypassList::parse(&["static"]);
            })
            .build()
            .unwrap_err()
            .to_string();
        assert!(problems.contains("rooms[sale].admit_per_minute: must be at least 1"), "{problems}");
        assert!(problems.contains("rooms[sale].session_duration: must be at least 10s"), "{problems}");
        assert!(problems.contains("rooms[sale].bypass: `static` is neither"), "{problems}");
    }
}
