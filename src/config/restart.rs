//! Which keys a reload (`SIGHUP`) cannot apply: the sockets already bound, the store
//! already connected, the log already set up. A file that changes any of them is refused
//! whole, so that what runs is always exactly one file's config.

use super::Config;
use std::fmt::Debug;

/// The keys that need a restart, as `key: problem` lines (empty: the file can be loaded).
pub(crate) fn changes_needing_restart(running: &Config, file: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |key: &str, now: &dyn Debug, next: &dyn Debug, same: bool| {
        if !same {
            problems.push(format!(
                "{key}: changing it needs a restart (running with {now:?}, the file says {next:?}); \
                 the running config stays in force"
            ));
        }
    };
    let (a, b) = (&running.listen, &file.listen);
    check("listen.http", &a.http, &b.http, a.http == b.http);
    check("listen.https", &a.https, &b.https, a.https == b.https);
    check("listen.admin", &a.admin, &b.admin, a.admin == b.admin);
    let (a, b) = (&running.store, &file.store);
    check("store.backend", &a.backend, &b.backend, a.backend == b.backend);
    // The URLs may hold a password: never printed.
    check("store.redis_url", &"(hidden)", &"(changed)", a.redis_url == b.redis_url);
    check("store.redis_cluster", &"(hidden)", &"(changed)", a.redis_cluster == b.redis_cluster);
    check("store.redis_ca_file", &a.redis_ca_file, &b.redis_ca_file, a.redis_ca_file == b.redis_ca_file);
    check("log.format", &running.log.format, &file.log.format, running.log.format == file.log.format);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(&format!("[origin]\nurl = \"http://127.0.0.1:9\"\n{text}"), std::iter::empty()).unwrap()
    }

    #[test]
    fn rooms_limits_and_keys_reload_but_sockets_and_the_store_do_not() {
        let running = config("[[rooms]]\nname = \"a\"\npaths = [\"/a\"]\n");
        let live = config(
            "[limits]\nidle_timeout = \"120s\"\n[[rooms]]\nname = \"b\"\npaths = [\"/b\"]\nadmit_per_minute = 9\n",
        );
        assert!(changes_needing_restart(&running, &live).is_empty());
        let moved = config("[listen]\nhttp = \"0.0.0.0:8081\"\nadmin = \"127.0.0.1:9191\"\n");
        let problems = changes_needing_restart(&running, &moved);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("listen.http: changing it needs a restart"), "{problems:?}");
        assert!(problems[0].contains("0.0.0.0:8081"), "{problems:?}");
        assert!(problems[1].starts_with("listen.admin:"), "{problems:?}");
        let store = config(
            "[tokens]\nallow_random_keys = true\n[store]\nbackend = \"redis\"\nredis_url = \"redis://:hunter2hunter2@10.0.0.1:6379\"\n",
        );
        let problems = changes_needing_restart(&running, &store);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().all(|p| !p.contains("hunter2")), "{problems:?}");
    }
}
