//! What types alone cannot check: ranges and combinations of a config's values, each
//! problem as a `key: problem` line.

use super::{rooms, Config, ConfigErrors, MIN_ADMIN_TOKEN_CHARS};

impl Config {
    /// Checks what types alone cannot: ranges and combinations. The files the config names
    /// (keys, certificates, templates) are read once, by `files()` and the queue pages.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, line: &str| {
            if !ok {
                problems.push(line.to_owned());
            }
        };
        let o = &self.origin;
        match o.url.scheme_str() {
            None => check(false, "origin.url: missing scheme (write http://host:port or https://host:port)"),
            Some("http" | "https") => {}
            Some(other) => check(false, &format!("origin.url: unsupported scheme `{other}` (use http or https)")),
        }
        check(o.url.host().is_some(), "origin.url: missing host");
        check(
            matches!(o.url.path(), "" | "/") && o.url.query().is_none(),
            "origin.url: must not have a path or query (anteroom forwards the client's path as is)",
        );
        check(o.max_requests_per_second > 0, "origin.max_requests_per_second: must be at least 1");
        check(o.max_in_flight > 0, "origin.max_in_flight: must be at least 1");
        check(!o.connect_timeout.0.is_zero(), "origin.connect_timeout: must be longer than 0");
        check(!o.response_timeout.0.is_zero(), "origin.response_timeout: must be longer than 0");
        check(!o.pool_idle_timeout.0.is_zero(), "origin.pool_idle_timeout: must be longer than 0");
        if let Some(ca) = &o.ca_file {
            check(ca.is_file(), &format!("origin.ca_file: {} is not a readable file", ca.display()));
        }

        check(
            !(self.store.backend == super::Backend::Redis
                && self.tokens.keys.is_empty()
                && !self.tokens.allow_random_keys),
            "tokens.keys: empty with store.backend = \"redis\": every instance would sign with its own random key, \
             and a buyer let in by one would be queued again by the next; add a key (anteroom keygen), or set \
             tokens.allow_random_keys = true if only one instance runs",
        );

        let l = &self.limits;
        // hyper cannot buffer less than 8 KiB of headers.
        check(
            (8192..=16 << 20).contains(&l.max_header_bytes.0),
            "limits.max_header_bytes: must be between 8KiB and 16MiB",
        );
        check(!l.header_read_timeout.0.is_zero(), "limits.header_read_timeout: must be longer than 0");
        check(!l.body_read_timeout.0.is_zero(), "limits.body_read_timeout: must be longer than 0");
        check(
            l.body_buffer_bytes.0 <= 16 << 20,
            "limits.body_buffer_bytes: at most 16MiB (each request may hold this much memory)",
        );
        check(!l.idle_timeout.0.is_zero(), "limits.idle_timeout: must be longer than 0");
        // A connection waiting for its slot and then for the origin moves no byte; it must
        // not be mistaken for an idle one.
        check(
            l.idle_timeout.0 > o.max_wait.0 + o.response_timeout.0,
            "limits.idle_timeout: must be longer than origin.max_wait + origin.response_timeout",
        );

        let n = &self.listen;
        check(n.http.is_some() || n.https.is_some(), "listen: set at least one of http or https");
        if n.https.is_some() {
            check(n.tls_cert.is_some(), "listen.tls_cert: required when listen.https is set");
            check(n.tls_key.is_some(), "listen.tls_key: required when listen.https is set");
        }
        if let Some(token) = &self.admin.token {
            let token = token.expose();
            if token.trim().is_empty() {
                problems.push(format!(
                    "admin.token: is empty, which would let anyone pause rooms or change their rates; set at least \
                     {MIN_ADMIN_TOKEN_CHARS} characters, or leave the key (and ANTEROOM_ADMIN_TOKEN) unset to keep the \
                     admin API off"
                ));
            } else if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                problems.push(format!("admin.token: too short to be secret; use at least {MIN_ADMIN_TOKEN_CHARS} characters (anteroom keygen makes one)"));
            }
        }
        self.store.validate(&mut problems);
        rooms::validate(&self.rooms, o.response_timeout.0, self.tokens.leeway, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems))
        }
    }
}
