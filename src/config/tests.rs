use super::*;

const MINIMAL: &str = "[origin]\nurl = \"http://127.0.0.1:3000\"\n";

fn load(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml(text, [])
}

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    Config::from_toml(text, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// The problems of a config, including those of the files it names.
fn problems(text: &str) -> String {
    load(text).and_then(|config| config.files().map(drop)).expect_err("config should be rejected").to_string()
}

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let c = load(MINIMAL).expect("valid");
    assert_eq!(c.limits.max_header_bytes.0, 64 << 10);
    assert_eq!(c.limits.max_body_bytes.0, 100 << 20);
    assert_eq!(c.limits.body_buffer_bytes.0, 64 << 10);
    assert_eq!(c.limits.body_read_timeout.0, std::time::Duration::from_secs(10));
    assert_eq!(c.limits.min_upload_rate.0, 8 << 10);
    assert_eq!(c.limits.header_read_timeout.0, std::time::Duration::from_secs(10));
    assert_eq!(c.limits.idle_timeout.0, std::time::Duration::from_secs(60));
    assert_eq!(c.limits.shutdown_grace.0, std::time::Duration::from_secs(30));
    assert!(!c.limits.allow_upgrade);
    assert_eq!(c.origin.host_header, HostHeader::Preserve);
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text = include_str!("../../config/anteroom.toml");
    load(text).expect("config/anteroom.toml must stay valid");
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let p = problems("[origin]\nurl = \"http://a:1\"\nmax_rps = 5\n");
    assert!(p.starts_with("origin.max_rps: unknown key"), "{p}");
    let p = problems("[origin]\nurl = \"http://a:1\"\n[orign]\nurl = \"x\"\n");
    assert!(p.starts_with("orign: unknown key"), "{p}");
}

#[test]
fn a_missing_origin_is_named() {
    assert!(problems("[listen]\n").starts_with("origin: missing"), "{}", problems("[listen]\n"));
    assert!(problems("[origin]\n").starts_with("origin.url: missing"));
}

#[test]
fn bad_values_name_the_key_and_the_problem() {
    let cases = [
        ("[origin]\nurl = \"127.0.0.1:3000\"\n", "origin.url: missing scheme"),
        ("[origin]\nurl = \"ftp://a:1\"\n", "origin.url: unsupported scheme"),
        ("[origin]\nurl = \"http://a:1/shop\"\n", "origin.url: must not have a path"),
        ("[origin]\nurl = \"http://a:1\"\nmax_wait = \"2\"\n", "origin.max_wait:"),
        ("[origin]\nurl = \"http://a:1\"\nmax_wait = 2\n", "origin.max_wait:"),
        (
            "[origin]\nurl = \"http://a:1\"\nmax_requests_per_second = 0\n",
            "origin.max_requests_per_second: must be at least 1",
        ),
        ("[origin]\nurl = \"http://a:1\"\nmax_in_flight = -1\n", "origin.max_in_flight:"),
        ("[origin]\nurl = \"http://a:1\"\nhost_header = \"mine\"\n", "origin.host_header:"),
        (
            "[origin]\nurl = \"http://a:1\"\n[limits]\nmax_header_bytes = 100\n",
            "limits.max_header_bytes: must be between",
        ),
        ("[origin]\nurl = \"http://a:1\"\n[listen]\nhttp = \"nonsense\"\n", "listen.http:"),
        ("[origin]\nurl = \"http://a:1\"\n[listen]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", "listen.trusted_proxies"),
        ("[origin]\nurl = \"http://a:1\"\n[listen]\nhttps = \"0.0.0.0:8443\"\n", "listen.tls_cert: required"),
        ("[origin]\nurl = \"http://a:1\"\n[log]\nformat = \"xml\"\n", "log.format:"),
        (
            "[origin]\nurl = \"http://a:1\"\n[limits]\nidle_timeout = \"5s\"\n",
            "limits.idle_timeout: must be longer than origin.max_wait",
        ),
    ];
    for (text, expected) in cases {
        let p = problems(text);
        assert!(p.contains(expected), "for {text:?}: expected {expected:?}, got {p:?}");
    }
}

#[test]
fn a_syntax_error_gives_the_line() {
    let p = problems("[origin]\nurl = \"http://a:1\"\nburst = = 3\n");
    assert!(p.starts_with("config: TOML syntax error on line 3"), "{p}");
}

#[test]
fn unreadable_tls_files_are_reported_per_key() {
    let text = "[origin]\nurl = \"http://a:1\"\n[listen]\nhttps = \"127.0.0.1:0\"\n\
                tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n";
    let p = problems(text);
    assert!(p.contains("listen.tls_cert: cannot read /nonexistent/cert.pem"), "{p}");
    assert!(p.contains("listen.tls_key: cannot read"), "{p}");
}

#[test]
fn environment_overrides_win_and_keep_types() {
    let c = load_env(
        MINIMAL,
        &[
            ("ANTEROOM_ORIGIN__URL", "https://shop.internal:8443"),
            ("ANTEROOM_ORIGIN__MAX_REQUESTS_PER_SECOND", "250"),
            ("ANTEROOM_LIMITS__IDLE_TIMEOUT", "2m"),
            ("ANTEROOM_LISTEN__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
            ("ANTEROOM_ADMIN_TOKEN", "1234567890abcdef"),
            ("ANTEROOM_CONFIG", "ignored.toml"),
            ("HOME", "/root"),
        ],
    )
    .expect("valid");
    assert_eq!(c.origin.url.to_string(), "https://shop.internal:8443/");
    assert_eq!(c.origin.max_requests_per_second, 250);
    assert_eq!(c.limits.idle_timeout.0, std::time::Duration::from_secs(120));
    assert_eq!(c.listen.trusted_proxies.len(), 1);
    assert_eq!(c.admin.token.as_ref().map(Secret::expose), Some("1234567890abcdef"));
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let p = load_env(MINIMAL, &[("ANTEROOM_ORIGIN__BURST", "lots")]).expect_err("rejected").to_string();
    assert!(p.starts_with("origin.burst:") && p.contains("(set by ANTEROOM_ORIGIN__BURST)"), "{p}");
    let p = load_env(MINIMAL, &[("ANTEROOM_ORIGIN__BURTS", "3")]).expect_err("rejected").to_string();
    assert!(p.starts_with("origin.burts: unknown key") && p.contains("ANTEROOM_ORIGIN__BURTS"), "{p}");
}

#[test]
fn an_empty_or_short_admin_token_is_refused_not_taken_as_no_token() {
    // The usual accident: ANTEROOM_ADMIN_TOKEN= from an unset shell variable.
    let p = load_env(MINIMAL, &[("ANTEROOM_ADMIN_TOKEN", "")]).expect_err("rejected").to_string();
    assert!(p.starts_with("admin.token: is empty") && p.contains("(set by ANTEROOM_ADMIN_TOKEN)"), "{p}");
    let p = load_env(&format!("{MINIMAL}\n[admin]\ntoken = \"   \""), &[]).expect_err("rejected").to_string();
    assert!(p.starts_with("admin.token: is empty"), "{p}");
    let p = load_env(&format!("{MINIMAL}\n[admin]\ntoken = \"t0ken\""), &[]).expect_err("rejected").to_string();
    assert!(p.starts_with("admin.token: too short"), "{p}");
    // No token at all keeps the admin API off, as before.
    assert!(load_env(MINIMAL, &[]).expect("valid").admin.token.is_none());
}

#[test]
fn secrets_are_masked_in_the_printed_config() {
    let c = load_env(MINIMAL, &[("ANTEROOM_ADMIN__TOKEN", "s3cr3t-value-0123")]).expect("valid");
    let printed = c.to_masked_toml();
    assert!(!printed.contains("s3cr3t-value-0123"), "{printed}");
    assert!(printed.contains("token = \"********\""), "{printed}");
    assert!(!format!("{c:?}").contains("s3cr3t-value-0123"));
}

fn key_file(alg: crate::token::TokenAlgorithm) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), crate::token::generate_key(alg).expect("keygen")).expect("write");
    file
}

#[test]
fn token_keys_load_from_files_and_secrets() {
    let file = key_file(crate::token::TokenAlgorithm::EdDsa);
    let text = format!(
        "{MINIMAL}[tokens]\nalgorithm = \"EdDSA\"\nissuer = \"shop-gate\"\n[[tokens.keys]]\nkid = \"2026-11\"\nprivate_key_file = \"{}\"\n",
        file.path().display()
    );
    let keys = load(&text).expect("valid").tokens.load().expect("keys");
    assert_eq!(keys.jwks()["keys"][0]["kid"], "2026-11");

    let text = format!("{MINIMAL}[[tokens.keys]]\nkid = \"a\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n");
    let config = load(&text).expect("valid");
    assert!(!config.to_masked_toml().contains("0123456789abcdef"), "the secret is masked");
}

#[test]
fn bad_token_keys_are_named_by_kid() {
    let cases = [
        (
            "[tokens]\nalgorithm = \"EdDSA\"\n[[tokens.keys]]\nkid = \"k1\"\nprivate_key_file = \"/no/key.pem\"\n",
            "tokens.keys[k1].private_key_file: cannot read /no/key.pem",
        ),
        ("[[tokens.keys]]\nkid = \"k2\"\n", "tokens.keys[k2]: set exactly one of secret or private_key_file"),
        (
            "[[tokens.keys]]\nkid = \"k3\"\nsecret = \"short\"\n",
            "tokens.keys[k3]: an HS256 secret must be at least 32 bytes",
        ),
        ("[tokens]\nalgorithm = \"RS256\"\n", "tokens.algorithm:"),
    ];
    for (extra, expected) in cases {
        let p = problems(&format!("{MINIMAL}{extra}"));
        assert!(p.contains(expected), "for {extra:?}: expected {expected:?}, got {p:?}");
    }
    let es = key_file(crate::token::TokenAlgorithm::Es256);
    let p = problems(&format!(
        "{MINIMAL}[tokens]\nalgorithm = \"EdDSA\"\n[[tokens.keys]]\nkid = \"k4\"\nprivate_key_file = \"{}\"\n",
        es.path().display()
    ));
    assert!(p.contains("tokens.keys[k4]: not an Ed25519 PKCS#8 key"), "{p}");
}

#[test]
fn without_keys_a_random_hs256_key_is_used() {
    let keys = load(MINIMAL).expect("valid").tokens.load().expect("keys");
    assert_eq!(keys.jwks(), serde_json::json!({ "keys": [] }));
}

#[test]
fn adaptive_admission_keys_load_with_defaults() {
    let room = |extra: &str| format!("{MINIMAL}[[rooms]]\nname = \"sale\"\npaths = [\"/sale\"]\n{extra}");
    let c = load(&room("")).expect("valid");
    assert_eq!(c.rooms[0].admission, AdmissionMode::Fixed);
    assert_eq!(c.rooms[0].max_origin_error_rate, 0.01);
    let c = load(&room("admission = \"adaptive\"\nadmit_per_minute = 6000\ntarget_origin_latency = \"300ms\"\n"))
        .expect("valid");
    let sale = &c.rooms[0];
    assert_eq!(sale.admission, AdmissionMode::Adaptive);
    assert_eq!(sale.min_admit_per_minute(), 60, "1 % of the ceiling");
    assert_eq!(sale.target_origin_latency.as_ref().map(|t| t.0), Some(std::time::Duration::from_millis(300)));
    // A fixed room may keep the adaptive keys, to switch on the day.
    load(&room("min_admit_per_minute = 10\ntarget_origin_latency = \"1s\"\n")).expect("valid");
}

#[test]
fn bad_adaptive_admission_values_name_the_room_key_and_problem() {
    let room = |extra: &str| format!("{MINIMAL}[[rooms]]\nname = \"sale\"\npaths = [\"/sale\"]\n{extra}");
    let adaptive = "admission = \"adaptive\"\nadmit_per_minute = 600\n";
    let cases = [
        (adaptive.to_owned(), "rooms[sale].target_origin_latency: required with admission = \"adaptive\""),
        (
            format!("{adaptive}target_origin_latency = \"300ms\"\nmin_admit_per_minute = 601\n"),
            "rooms[sale].min_admit_per_minute: 601 is above admit_per_minute (600)",
        ),
        (
            format!("{adaptive}target_origin_latency = \"300ms\"\nmin_admit_per_minute = 0\n"),
            "rooms[sale].min_admit_per_minute: must be at least 1",
        ),
        (
            format!("{adaptive}target_origin_latency = \"0s\"\n"),
            "rooms[sale].target_origin_latency: must be between 1ms and 60s",
        ),
        (
            format!("{adaptive}target_origin_latency = \"2h\"\n"),
            "rooms[sale].target_origin_latency: must be between 1ms and 60s",
        ),
        (
            format!("{adaptive}target_origin_latency = \"45s\"\n"),
            "rooms[sale].target_origin_latency: must be shorter than origin.response_timeout (30s)",
        ),
        (
            format!("{adaptive}target_origin_latency = \"1s\"\nmax_origin_error_rate = 1.0\n"),
            "rooms[sale].max_origin_error_rate: must be a fraction",
        ),
        (
            format!("{adaptive}target_origin_latency = \"1s\"\nmax_origin_error_rate = -0.1\n"),
            "rooms[sale].max_origin_error_rate: must be a fraction",
        ),
        (
            format!("{adaptive}target_origin_latency = \"1s\"\nmax_origin_error_rate = nan\n"),
            "rooms[sale].max_origin_error_rate: must be a fraction",
        ),
        ("admission = \"auto\"\n".to_owned(), "admission"),
        (format!("{adaptive}target_origin_latency = 300\n"), "target_origin_latency"),
    ];
    for (extra, expected) in cases {
        let p = problems(&room(&extra));
        assert!(p.contains(expected), "for {extra:?}: expected {expected:?}, got {p:?}");
    }
}
