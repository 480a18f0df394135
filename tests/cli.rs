//! The `anteroom` binary: config checking with clear errors, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::process::{admin_address, spawn_run, terminate, ConfigFrom, BIN};

fn check_config(text: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anteroom.toml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("check-config").arg("--config").arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run anteroom")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn each_kind_of_invalid_config_exits_non_zero_with_a_key_and_problem_line() {
    let cases: &[(&str, &str)] = &[
        ("[origin\nurl = 1", "config: TOML syntax error on line 1"),
        ("[origin]\nurl = \"http://a:1\"\ncolour = \"blue\"\n", "origin.colour: unknown key"),
        ("[listen]\nhttp = \"127.0.0.1:8080\"\n", "origin: missing"),
        ("[origin]\nurl = \"shop:8080\"\n", "origin.url: missing scheme"),
        ("[origin]\nurl = \"http://a:1\"\nmax_wait = \"soon\"\n", "origin.max_wait:"),
        ("[origin]\nurl = \"http://a:1\"\nburst = \"many\"\n", "origin.burst:"),
        ("[origin]\nurl = \"http://a:1\"\n[listen]\nhttps = \"0.0.0.0:8443\"\n", "listen.tls_cert: required"),
        (
            "[origin]\nurl = \"http://a:1\"\n[listen]\nhttps = \"0.0.0.0:8443\"\ntls_cert = \"/no/cert.pem\"\ntls_key = \"/no/key.pem\"\n",
            "listen.tls_cert: cannot read /no/cert.pem",
        ),
        ("[origin]\nurl = \"http://a:1\"\n[store]\nbackend = \"redis\"\nredis_url = \"http://x\"\n", "store.redis_url: `http://x` must start with redis://"),
        ("[origin]\nurl = \"http://a:1\"\n[store]\non_failure = \"maybe\"\n", "store.on_failure:"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"Big Sale\"\npaths = [\"/t\"]\n", "rooms[Big Sale].name: use 1 to 64 lowercase"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"t\"]\n", "rooms[a].paths: `t` must start with /"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\n[[rooms]]\nname = \"b\"\npaths = [\"/t/\"]\n", "rooms[b].paths: `/t/` is already covered by another room"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nadmit_per_minute = 0\n", "rooms[a].admit_per_minute: must be at least 1"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nqueueing_status = 302\n", "rooms[a].queueing_status: must be 200, 202, 429 or 503"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nopens_at = \"tomorrow\"\n", "rooms[0].opens_at: `tomorrow` is not an RFC 3339 time"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nopens_at = \"2026-02-31T10:00:00Z\"\n", "rooms[0].opens_at: `2026-02-31T10:00:00Z` is not an RFC 3339 time"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nbypass = [\"static\"]\n", "rooms[a].bypass: `static` is neither"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nabandon_after = \"0s\"\n", "rooms[a].abandon_after: must be at least 1s"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nclaim_within = \"0s\"\n", "rooms[a].claim_within: must be at least 1s"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nrejoin_grace = \"2h\"\n", "rooms[a].rejoin_grace: at most 1h"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\ntime_zone = \"Europe/Pariss\"\n", "rooms[a].time_zone: `Europe/Pariss` is not an IANA time zone name"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\n", "rooms[0].paths: missing"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nadmission = \"adaptive\"\n", "rooms[a].target_origin_latency: required with admission = \"adaptive\""),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nadmission = \"smart\"\n", "rooms[0].admission:"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nadmit_per_minute = 100\nmin_admit_per_minute = 200\n", "rooms[a].min_admit_per_minute: 200 is above admit_per_minute (100)"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\nmax_origin_error_rate = 2\n", "rooms[a].max_origin_error_rate: must be a fraction"),
        ("[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"a\"\npaths = [\"/t\"]\ntarget_origin_latency = \"0ms\"\n", "rooms[a].target_origin_latency: must be between 1ms and 60s"),
        ("[origin]\nurl = \"http://a:1\"\nadaptive_in_flight = \"yes\"\n", "origin.adaptive_in_flight:"),
    ];
    for (text, expected) in cases {
        let out = check_config(text, &[]);
        assert!(!out.status.success(), "accepted {text:?}");
        let err = stderr(&out);
        assert!(err.contains(expected), "for {text:?}: expected {expected:?} in {err:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn an_empty_admin_token_from_an_unset_variable_is_refused_with_exit_2() {
    let out = check_config("[origin]\nurl = \"http://a:1\"\n", &[("ANTEROOM_ADMIN_TOKEN", "")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("admin.token: is empty") && err.contains("ANTEROOM_ADMIN_TOKEN"), "{err}");
    let short = check_config("[origin]\nurl = \"http://a:1\"\n[admin]\ntoken = \"secret\"\n", &[]);
    assert_eq!(short.status.code(), Some(2));
    assert!(stderr(&short).contains("admin.token: too short"), "{}", stderr(&short));
}

#[test]
fn a_missing_config_file_is_reported() {
    let out = Command::new(BIN).args(["check-config", "--config", "/no/such/anteroom.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("config: cannot read /no/such/anteroom.toml"), "{}", stderr(&out));
}

#[test]
fn a_bad_environment_override_is_reported_with_its_variable() {
    let out = check_config("[origin]\nurl = \"http://a:1\"\n", &[("ANTEROOM_ORIGIN__MAX_IN_FLIGHT", "lots")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("origin.max_in_flight:") && stderr(&out).contains("ANTEROOM_ORIGIN__MAX_IN_FLIGHT"));
}

#[test]
fn a_valid_config_prints_the_effective_values_with_secrets_masked() {
    let out = check_config(
        "[origin]\nurl = \"http://a:1\"\n[admin]\ntoken = \"very-secret-token\"\n[[rooms]]\nname = \"sale\"\npaths = [\"/t\"]\n",
        &[("ANTEROOM_ORIGIN__BURST", "7")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("burst = 7"), "env override applied: {printed}");
    assert!(printed.contains("max_body_bytes = \"100MiB\""), "defaults shown: {printed}");
    // A background tab or a phone answering a message keeps its place; an admitted buyer
    // has two minutes to come back for the token.
    assert!(printed.contains("abandon_after = \"5m\""), "{printed}");
    assert!(printed.contains("claim_within = \"2m\""), "{printed}");
    // A buyer dropped for silence may come back to the place for as long again.
    assert!(printed.contains("rejoin_grace = \"5m\""), "{printed}");
    assert!(!printed.contains("very-secret-token"));
    assert!(printed.contains("token = \"********\""));
}

#[test]
fn the_shipped_configs_check_clean() {
    for file in ["config/anteroom.toml", "config/rehearsal/adaptive.toml", "config/rehearsal/fixed.toml"] {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let out = Command::new(BIN).arg("check-config").arg("--config").arg(shipped).output().unwrap();
        assert!(out.status.success(), "{file}: {}", stderr(&out));
    }
}

#[test]
fn run_refuses_an_invalid_config_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[origin]\nurl = \"nope\"\n").unwrap();
    let out = Command::new(BIN).arg("run").arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("origin.url:"));
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anteroom.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(&path, format!("[listen]\nadmin = \"127.0.0.1:{port}\"\n[origin]\nurl = \"http://127.0.0.1:9\"\n"))
        .unwrap();
    let out = Command::new(BIN).arg("healthcheck").arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unhealthy"));
}

#[test]
fn run_serves_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = spawn_run(dir.path(), "", ConfigFrom::Env);
    let started = Instant::now();
    let serving = loop {
        let line = lines.next().expect("a log line");
        if line.contains("anteroom is serving") {
            break line;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never started");
    };
    // The container health check finds it healthy (the admin port was 0: read it off the log).
    let admin = serving.split_whitespace().find_map(|f| f.strip_prefix("admin=")).expect("admin address");
    let probe = dir.path().join("probe.toml");
    std::fs::write(&probe, format!("[listen]\nadmin = \"{admin}\"\n[origin]\nurl = \"http://127.0.0.1:9\"\n")).unwrap();
    let health = Command::new(BIN).arg("healthcheck").arg("--config").arg(&probe).output().unwrap();
    assert!(health.status.success(), "{}", stderr(&health));

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM drains and exits 0");
    let rest: Vec<String> = lines.collect();
    assert!(rest.iter().any(|l| l.contains("draining")), "{rest:?}");
}

/// Starts `anteroom demo` on port 0 with `extra` arguments; returns the child, the
/// gateway's address and the rest of its output, from the first URL it prints.
fn spawn_demo(extra: &[&str]) -> (Child, String, impl Iterator<Item = String>) {
    let (child, url, lines) = spawn_demo_with(extra, &[("RUST_LOG", std::ffi::OsStr::new("warn"))]);
    let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    (child, addr, lines)
}

/// Starts `anteroom demo` on port 0; returns the child, the first URL it prints, and the
/// rest of its output.
fn spawn_demo_with(extra: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (Child, String, impl Iterator<Item = String>) {
    let mut command = Command::new(BIN);
    command.args(["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]).args(extra);
    command.env_remove("RUST_LOG").stdout(Stdio::piped()).stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let url = lines
        .by_ref()
        .find_map(|l| l.split_once("open this page to join the line: ").map(|(_, url)| url.trim().to_owned()))
        .expect("the demo prints the URL to open");
    (child, url, lines)
}

#[test]
fn the_demo_shows_the_queue_at_the_first_url_and_a_summary_instead_of_access_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, url, mut lines) = spawn_demo_with(&[], &[("TMPDIR", tmp.path().as_os_str())]);
    let (addr, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.contains("x-anteroom-state: waiting"), "the first URL shows the line: {answer}");
    assert!(answer.contains("You are in line"), "{answer}");
    let rest: Vec<String> = lines.by_ref().take_while(|l| !l.starts_with("line ")).collect();
    let log = rest.iter().find_map(|l| l.split_once("access log:").map(|(_, p)| p.trim().to_owned())).unwrap();
    // The console's address and this run's admin token, which logs in.
    let console = rest.iter().find_map(|l| l.split_once("the console:").map(|(_, c)| c.trim().to_owned())).unwrap();
    let (console_url, token) = console.split_once(" (admin token: ").expect("a token");
    let token = token.trim_end_matches(')');
    assert!(console_url.ends_with("/admin/console") && token.len() >= 16, "{console}");
    let admin = console_url.trim_start_matches("http://").trim_end_matches("/admin/console");
    let status = Command::new(BIN)
        .args(["admin", "--url", &format!("http://{admin}"), "--token", token, "status", "show"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let summary = lines.next().expect("a summary line");
    assert!(summary.contains("waiting | admitted") && summary.contains("| shop"), "{summary}");
    assert!(rest.iter().all(|l| !l.contains("anteroom::access")), "no access log on the terminal: {rest:?}");
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let log_path = log.split_whitespace().next().unwrap();
    assert!(log_path.starts_with(tmp.path().to_str().unwrap()), "{log_path}");
    let written = std::fs::read_to_string(log_path).unwrap();
    assert!(written.contains("anteroom::access") && written.contains("path=/events/1"), "{written}");
}

#[test]
fn the_demo_serves_the_sample_shop_through_the_gateway() {
    let (mut child, addr, _lines) = spawn_demo(&["--crowd", "0"]);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut stream, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Sample Ticket Shop"));
    // The event pages are a waiting room; quiet now, so the visitor walks straight in.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /events/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("The Exclusive Show"), "{answer}");
    assert!(answer.contains("set-cookie: anteroom_t_show="), "{answer}");
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn the_demo_can_put_the_fragile_shop_behind_the_gateway() {
    let (mut child, addr, _lines) = spawn_demo(&["--crowd", "0", "--shop", "fragile"]);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /events/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("an event page"), "{answer}");
    terminate(&mut child);
    let unknown = Command::new(BIN).args(["demo", "--shop", "sturdy"]).output().unwrap();
    assert!(!unknown.status.success() && stderr(&unknown).contains("fragile"), "{}", stderr(&unknown));
}

#[test]
fn keygen_prints_keys_that_sign_and_verify() {
    use anteroom::token::{KeyMaterial, KeySpec, TokenAlgorithm, TokenKeys};
    for (flag, alg) in
        [("hs256", TokenAlgorithm::Hs256), ("eddsa", TokenAlgorithm::EdDsa), ("es256", TokenAlgorithm::Es256)]
    {
        let out = Command::new(BIN).args(["keygen", "--alg", flag]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let key = String::from_utf8(out.stdout).unwrap();
        let material = match alg {
            TokenAlgorithm::Hs256 => KeyMaterial::Secret(key.trim().as_bytes().to_vec()),
            _ => KeyMaterial::PrivateKeyPem(key.into_bytes()),
        };
        let keys = TokenKeys::new(alg, &[KeySpec { kid: "k".into(), material }], "anteroom", "shop", 5).expect(flag);
        let token = keys.issue("v", "sale", "s", unix_now(), 60);
        assert!(keys.verify(&token, "sale").is_ok(), "{flag}");
    }
    let out = Command::new(BIN).args(["keygen", "--alg", "rs256"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--alg: unknown algorithm `rs256`"));
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn admin_pauses_resumes_and_sets_a_room_of_a_running_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let room = "[[rooms]]\nname = \"sale\"\npaths = [\"/tickets\"]\nadmission = \"adaptive\"\ntarget_origin_latency = \"300ms\"\n";
    let (mut child, mut lines) = spawn_run(dir.path(), room, ConfigFrom::Flag);
    let admin = admin_address(&mut lines);
    let cli = dir.path().join("cli.toml");
    std::fs::write(&cli, format!("[listen]\nadmin = \"{admin}\"\n[origin]\nurl = \"http://127.0.0.1:9\"\n{room}"))
        .unwrap();
    let admin_cmd = |args: &[&str], token: &str| {
        Command::new(BIN)
            .arg("admin")
            .arg("--config")
            .arg(&cli)
            .args(args)
            .env("ANTEROOM_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    // The running gateway has no token: the API says how to turn it on.
    let off = admin_cmd(&["status"], "whatever-whatever-token");
    assert!(!off.status.success());
    assert!(stderr(&off).contains("admin.token"), "{}", stderr(&off));
    terminate(&mut child);

    let (mut child, mut lines) =
        spawn_run(dir.path(), &format!("[admin]\ntoken = \"t0ken-for-the-cli-test\"\n{room}"), ConfigFrom::Flag);
    let admin = admin_address(&mut lines);
    std::fs::write(&cli, format!("[listen]\nadmin = \"{admin}\"\n[origin]\nurl = \"http://127.0.0.1:9\"\n{room}"))
        .unwrap();
    let json = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", stderr(out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(json(&admin_cmd(&["pause", "sale"], "t0ken-for-the-cli-test"))["paused"], true);
    assert_eq!(json(&admin_cmd(&["resume", "sale"], "t0ken-for-the-cli-test"))["paused"], false);
    let set = json(&admin_cmd(&["set", "sale", "--rate", "90", "--capacity", "7"], "t0ken-for-the-cli-test"));
    assert_eq!((set["admit_per_minute"].as_u64(), set["max_active_users"].as_u64()), (Some(90), Some(7)));
    assert_eq!(json(&admin_cmd(&["status"], "t0ken-for-the-cli-test"))["rooms"][0]["admit_per_minute"], 90);
    assert_eq!((set["rate_pinned"].as_bool(), set["controller_reason"].as_str()), (Some(true), Some("manual")));
    let auto = json(&admin_cmd(&["set", "sale", "--auto"], "t0ken-for-the-cli-test"));
    assert_eq!((auto["rate_pinned"].as_bool(), auto["admission"].as_str()), (Some(false), Some("adaptive")));
    let both = admin_cmd(&["set", "sale", "--rate", "5", "--auto"], "t0ken-for-the-cli-test");
    assert!(!both.status.success() && stderr(&both).contains("--auto"), "{}", stderr(&both));
    let wrong = admin_cmd(&["status"], "not-the-right-token");
    assert!(!wrong.status.success() && stderr(&wrong).contains("401"), "{}", stderr(&wrong));
    terminate(&mut child);
}

#[test]
fn admin_works_by_url_from_a_folder_without_any_config() {
    let dir = tempfile::tempdir().unwrap();
    let room = "[[rooms]]\nname = \"sale\"\npaths = [\"/tickets\"]\nadmit_per_minute = 120\nmax_active_users = 50\n";
    let token = "t0ken-for-the-remote-test";
    let (mut child, mut lines) =
        spawn_run(dir.path(), &format!("[admin]\ntoken = \"{token}\"\n{room}"), ConfigFrom::Flag);
    let admin = admin_address(&mut lines);
    // An ops laptop: another folder, no config file, no ANTEROOM_CONFIG.
    let laptop = tempfile::tempdir().unwrap();
    let remote = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(laptop.path()).env_remove("ANTEROOM_CONFIG").env_remove("ANTEROOM_ADMIN_TOKEN");
        cmd.env_remove("ANTEROOM_ADMIN_URL").arg("admin").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let json = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", stderr(out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let url = format!("http://{admin}");
    let by_flags = json(&remote(&["--url", &url, "--token", token, "status", "sale"], &[]));
    assert_eq!((by_flags["room"].as_str(), by_flags["admit_per_minute"].as_u64()), (Some("sale"), Some(120)));
    let by_env = [("ANTEROOM_ADMIN_URL", url.as_str()), ("ANTEROOM_ADMIN_TOKEN", token)];
    let set = json(&remote(&["set", "sale", "--rate", "30", "--capacity", "5"], &by_env));
    assert_eq!((set["admit_per_minute"].as_u64(), set["max_active_users"].as_u64()), (Some(30), Some(5)));
    // --reset drops the live values: the config's apply again.
    let reset = json(&remote(&["set", "sale", "--reset"], &by_env));
    assert_eq!((reset["admit_per_minute"].as_u64(), reset["max_active_users"].as_u64()), (Some(120), Some(50)));
    assert_eq!(reset["rate_pinned"], false);
    let said = json(&remote(&["message", "sale", "Doors open at 10:05"], &by_env));
    assert_eq!(said["message"], "Doors open at 10:05");
    assert_eq!(json(&remote(&["message", "sale", "--clear"], &by_env))["message"], serde_json::Value::Null);
    let neither = remote(&["message", "sale"], &by_env);
    assert!(!neither.status.success() && stderr(&neither).contains("<TEXT>"), "{}", stderr(&neither));
    let mixed = remote(&["set", "sale", "--reset", "--rate", "5"], &by_env);
    assert!(!mixed.status.success() && stderr(&mixed).contains("--reset"), "{}", stderr(&mixed));

    // Clear answers for what goes wrong from a laptop.
    let no_config = remote(&["status"], &[]);
    assert_eq!(no_config.status.code(), Some(2));
    assert!(stderr(&no_config).contains("--url"), "{}", stderr(&no_config));
    let wrong = remote(&["--url", &url, "--token", "not-the-right-token", "status"], &[]);
    assert!(!wrong.status.success() && stderr(&wrong).contains("401"), "{}", stderr(&wrong));
    let no_token = remote(&["--url", &url, "status"], &[]);
    assert!(!no_token.status.success() && stderr(&no_token).contains("401"), "{}", stderr(&no_token));
    for (bad, says) in [
        (format!("https://{admin}"), "plain HTTP"),
        ("10.0.0.5:9090".to_owned(), "http://"),
        (format!("http://user:{token}@{admin}"), "not in the URL"),
    ] {
        let out = remote(&["--url", &bad, "--token", token, "status"], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let away = remote(&["--url", &format!("http://127.0.0.1:{port}"), "--token", token, "status"], &[]);
    assert!(!away.status.success() && stderr(&away).contains("cannot reach"), "{}", stderr(&away));
    terminate(&mut child);
}

#[test]
fn sighup_reloads_the_file_and_a_broken_one_is_refused_with_its_problems_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let room = "[[rooms]]\nname = \"sale\"\npaths = [\"/tickets\"]\nadmit_per_minute = 60\n";
    let (mut child, mut lines) = spawn_run(dir.path(), room, ConfigFrom::Flag);
    lines.by_ref().find(|l| l.contains("anteroom is serving")).expect("started");
    let path = dir.path().join("anteroom.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let pid = child.id().to_string();
    let hangup = || assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());

    std::fs::write(&path, text.replace("admit_per_minute = 60", "admit_per_minute = 90")).unwrap();
    hangup();
    let reloaded = lines.by_ref().find(|l| l.contains("config reloaded")).expect("reloaded, still running");
    assert!(reloaded.contains("rooms=1"), "{reloaded}");

    std::fs::write(&path, text.replace("admit_per_minute = 60", "admit_per_minute = 0")).unwrap();
    hangup();
    let problem = lines.by_ref().find(|l| l.contains("ERROR")).expect("the problem is logged");
    assert!(problem.contains("rooms[sale].admit_per_minute: must be at least 1"), "{problem}");
    let refused = lines.by_ref().find(|l| l.contains("config reload refused")).expect("refused");
    assert!(refused.contains("problems=1"), "{refused}");

    std::fs::write(&path, text.replace("127.0.0.1:0", "127.0.0.1:1")).unwrap();
    hangup();
    let problem = lines.by_ref().find(|l| l.contains("ERROR")).expect("the problem is logged");
    assert!(problem.contains("listen.http: changing it needs a restart"), "{problem}");
    lines.by_ref().find(|l| l.contains("config reload refused")).expect("refused");

    // Still serving: SIGTERM ends it as usual.
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

/// The `anteroom admin …` commands the runbook gives, as typed: in code spans and blocks.
fn runbook_admin_commands() -> Vec<Vec<String>> {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RUNBOOK.md")).unwrap();
    let mut commands = Vec::new();
    for line in runbook.lines() {
        let spans = line.split('`').skip(1).step_by(2).map(str::to_owned);
        let block = line.starts_with("anteroom admin ").then(|| line.split(" #").next().unwrap().to_owned());
        for command in spans.chain(block).filter(|c| c.starts_with("anteroom admin ")) {
            // Words, with "quoted text" as one.
            let mut words = Vec::new();
            for (i, part) in command.split('"').enumerate() {
                if i % 2 == 1 {
                    words.push(part.to_owned());
                } else {
                    words.extend(part.split_whitespace().map(str::to_owned));
                }
            }
            commands.push(words[2..].to_vec());
        }
    }
    commands
}

#[test]
fn every_admin_command_in_the_runbook_works_against_a_running_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let token = "t0ken-for-the-runbook-test";
    let room = "[[rooms]]\nname = \"sale\"\npaths = [\"/tickets\"]\nadmission = \"adaptive\"\ntarget_origin_latency = \"300ms\"\n";
    let (mut child, mut lines) =
        spawn_run(dir.path(), &format!("[admin]\ntoken = \"{token}\"\n{room}"), ConfigFrom::Flag);
    let admin = admin_address(&mut lines);
    let commands = runbook_admin_commands();
    assert!(commands.len() >= 10, "{commands:?}");
    for args in &commands {
        let out = Command::new(BIN)
            .arg("admin")
            .args(args)
            .env("ANTEROOM_ADMIN_URL", format!("http://{admin}"))
            .env("ANTEROOM_ADMIN_TOKEN", token)
            .env_remove("ANTEROOM_CONFIG")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "anteroom admin {}: {}", args.join(" "), stderr(&out));
    }
    terminate(&mut child);
}

#[test]
fn admin_reads_any_well_formed_http_answer() {
    // A stand-in admin listener answering in chunks with chunk extensions, over a
    // keep-alive connection: legal HTTP/1.1 that only a real HTTP client reads right.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
                         9;source=test\r\n{\"rooms\":\r\n3\r\n[]}\r\n0\r\n\r\n",
            )
            .unwrap();
        std::thread::sleep(Duration::from_secs(1));
        String::from_utf8_lossy(&head).into_owned()
    });
    let dir = tempfile::tempdir().unwrap();
    let cli = dir.path().join("cli.toml");
    std::fs::write(&cli, format!("[listen]\nadmin = \"{addr}\"\n[origin]\nurl = \"http://127.0.0.1:9\"\n")).unwrap();
    let out = Command::new(BIN)
        .args(["admin", "--config"])
        .arg(&cli)
        .arg("status")
        .env("ANTEROOM_ADMIN_TOKEN", "a-token-long-enough-for-this")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON printed");
    assert_eq!(printed, serde_json::json!({ "rooms": [] }));
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /admin/rooms HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("authorization: Bearer a-token-long-enough-for-this"), "{head}");
}

#[test]
fn a_broken_room_template_stops_the_start_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("sale.html");
    std::fs::write(&template, "<h1>{{ title }}</h1>\n<p>{% if position %}{{ position }}</p>\n").unwrap();
    let text = format!(
        "[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"sale\"\npaths = [\"/t\"]\ntemplate = \"{}\"\n",
        template.display()
    );
    let out = check_config(&text, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("rooms[sale].template: {}: line", template.display())), "{err}");

    std::fs::write(&template, "<h1>{{ title }}</h1><p>{{ position }}</p>{{ scripts|safe }}\n").unwrap();
    let out = check_config(&text, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_demo_crowd_ends_in_a_before_and_after() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("TMPDIR", tmp.path().as_os_str()), ("RUST_LOG", std::ffi::OsStr::new("warn"))];
    let (mut child, _url, lines) = spawn_demo_with(&["--shop", "fragile", "--crowd", "200"], &env);
    let mut before = None;
    let mut after = None;
    let mut verdict = None;
    for line in lines {
        if line.starts_with("straight at the shop:") {
            before = Some(line);
        } else if line.starts_with("through anteroom:") {
            after = Some(line);
        } else if line.starts_with("the same crowd:") {
            verdict = Some(line);
            break;
        }
    }
    terminate(&mut child);
    let (before, after, verdict) = (before.unwrap(), after.unwrap(), verdict.unwrap());
    assert!(after.contains("200 of 200 buyers finished, 0 failed"), "{after}");
    assert!(before.contains(" of 200 buyers finished") && before.contains("the shop's p99"), "{before}");
    assert!(verdict.contains("through anteroom — reports: "), "{verdict}");
    // Both runs left a report where the line says.
    for run in ["through-anteroom", "straight-at-the-shop"] {
        let report = tmp.path().join("anteroom-demo").join(run).join("report.json");
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(report["crowd"], 200, "{run}");
        assert_eq!(report["direct"], run == "straight-at-the-shop", "{run}");
    }
}

#[test]
fn the_demo_crowd_makes_a_line_that_moves() {
    let (mut child, addr, _lines) = spawn_demo(&["--crowd", "40"]);
    let status = |cookie: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let request = format!(
            "GET /_anteroom/status?room=show HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        answer
    };
    // Let the crowd arrive, then join as a person would.
    std::thread::sleep(Duration::from_secs(8));
    let first = status("");
    let cookie = first
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a queue cookie")
        .to_owned();
    let position = |answer: &str| -> Option<u64> {
        let body = answer.split("\r\n\r\n").nth(1)?;
        serde_json::from_str::<serde_json::Value>(body).ok()?["position"].as_u64()
    };
    let joined = position(&status(&cookie)).expect("a place behind the crowd");
    assert!(joined > 3, "the crowd should be ahead: position {joined}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut now = joined;
    while now >= joined {
        assert!(Instant::now() < deadline, "the line did not move from {joined}");
        std::thread::sleep(Duration::from_secs(1));
        now = position(&status(&cookie)).unwrap_or(0);
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn each_admission_decision_has_its_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[log]\nformat = \"json\"\n[[rooms]]\nname = \"sale\"\npaths = [\"/tickets\"]\nadmit_per_minute = 1\n";
    let (mut child, mut lines) = spawn_run(dir.path(), extra, ConfigFrom::Flag);
    let json = |l: String| serde_json::from_str::<serde_json::Value>(&l).expect("every line is JSON");
    let serving = lines.by_ref().map(json).find(|v| v["message"] == "anteroom is serving").expect("serving line");
    let addr = serving["http"].as_str().expect("http address").to_owned();
    for _ in 0..2 {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        std::io::Write::write_all(&mut stream, b"GET /tickets/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap();
        std::io::Read::read_to_string(&mut stream, &mut String::new()).unwrap();
    }
    // First visitor: let in (token issued, then forwarded); second: queued.
    let mut seen = Vec::new();
    for line in lines.by_ref().map(json) {
        if line["target"] == "anteroom::admission" || line["target"] == "anteroom::access" {
            seen.push(line);
        }
        if seen.iter().filter(|l| l["target"] == "anteroom::access").count() == 2 {
            break;
        }
    }
    let admission = seen.iter().find(|l| l["target"] == "anteroom::admission").expect("an admission line");
    assert_eq!(
        (admission["room"].as_str(), admission["message"].as_str()),
        (Some("sale"), Some("admitted: token issued"))
    );
    let decisions: Vec<&str> =
        seen.iter().filter(|l| l["target"] == "anteroom::access").filter_map(|l| l["decision"].as_str()).collect();
    assert_eq!(decisions, ["admitted", "queued"]);
    let _ = child.kill();
    let _ = child.wait();
}
