//! The deployment files hold together: the dashboard and the alerts name only metrics
//! anteroom exports, promtool accepts the rules (and their own tests), the compose file's
//! services, ports, mounts and config agree, and the image's config has no sample room.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::origin::Origin;
use support::Gateway;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The metric families a gateway with a room exports (every family has its `# TYPE`
/// line, even before it has a value), with the series names histograms add.
async fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
    let origin = Origin::start().await;
    let gw = Gateway::with_config(&origin.url(), "", "[[rooms]]\nname = \"sale\"\npaths = [\"/t\"]\n").await;
    let text = gw.metrics().await;
    let mut families = BTreeSet::new();
    let mut series = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = rest.split_once(' ').unwrap();
        families.insert(name.to_owned());
        series.insert(name.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                series.insert(format!("{name}{suffix}"));
            }
        }
    }
    (families, series)
}

/// Every `anteroom_…` name in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("anteroom_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn the_dashboard_the_alerts_and_the_docs_name_only_exported_metrics_and_document_all() {
    let (families, series) = exported().await;
    assert!(families.len() >= 25, "{families:?}");
    let dashboard = read("deploy/grafana/anteroom.json");
    let alerts = read("deploy/prometheus/alerts.yml");
    for (file, text) in [("anteroom.json", &dashboard), ("alerts.yml", &alerts)] {
        let named = names_in(text);
        assert!(!named.is_empty(), "{file} names no metric");
        let unknown: Vec<_> = named.difference(&series).collect();
        assert!(unknown.is_empty(), "{file} names metrics anteroom does not export: {unknown:?}");
    }
    let docs = read("docs/METRICS.md");
    let undocumented: Vec<_> = families.iter().filter(|f| !docs.contains(&format!("`{f}"))).collect();
    assert!(undocumented.is_empty(), "docs/METRICS.md misses {undocumented:?}");

    // The dashboard is a real one: panels with queries, on the provisioned data source.
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let panels = json["panels"].as_array().expect("panels");
    assert!(panels.len() >= 12, "{} panels", panels.len());
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        assert!(targets.iter().all(|t| t["expr"].as_str().is_some_and(|e| e.contains("anteroom_"))));
        assert_eq!(panel["datasource"]["uid"], "prometheus");
    }
    let datasource = read("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert!(datasource.contains("uid: prometheus") && datasource.contains("url: http://prometheus:9090"));
    // The global gauges are aggregated with max(), never sum() (METRICS.md says why).
    for global in ["anteroom_queue_length", "anteroom_active_sessions", "anteroom_admit_per_minute"] {
        assert!(!dashboard.contains(&format!("sum by (room) ({global}")), "{global} summed over instances");
    }
}

fn promtool(args: &[&str]) {
    let out =
        Command::new("promtool").args(args).current_dir(format!("{DEPLOY}/prometheus")).output().unwrap_or_else(|e| {
            panic!("promtool: {e} (install Debian's `prometheus` package; bash .ci/test installs it)")
        });
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?}:\n{said}");
    assert!(said.contains("SUCCESS"), "promtool {args:?}:\n{said}");
}

#[test]
fn promtool_accepts_the_rules_their_tests_and_the_prometheus_config() {
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts_test.yml"]);
    promtool(&["check", "config", "prometheus.yml"]);
    let alerts = read("deploy/prometheus/alerts.yml");
    for alert in
        ["AnteroomLineStalled", "AnteroomShopSlow", "AnteroomStoreDown", "AnteroomShedding", "AnteroomReloadFailed"]
    {
        assert!(alerts.contains(&format!("alert: {alert}")), "{alert}");
    }
    // Every alert's runbook anchor is a heading of the runbook.
    let runbook = read("docs/RUNBOOK.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .map(|h| h.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-').collect::<String>())
        .map(|h| h.replace(' ', "-"))
        .collect();
    for line in alerts.lines().filter_map(|l| l.trim().strip_prefix("runbook: \"docs/RUNBOOK.md#")) {
        let anchor = line.trim_end_matches('"');
        assert!(anchors.contains(anchor), "no heading for #{anchor} in RUNBOOK.md: {anchors:?}");
    }
}

#[test]
fn the_compose_file_its_config_and_its_mounts_agree() {
    let mut compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("deploy/docker-compose.yml")).expect("YAML");
    // The gateways share their settings through a YAML merge key (`<<: *gateway`).
    compose.apply_merge().expect("merge keys");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    for needed in ["redis", "shop", "gateway-1", "gateway-2", "prometheus", "grafana"] {
        assert!(names.contains(needed), "no {needed} service: {names:?}");
    }
    let command = |service: &str| -> Vec<String> {
        compose["services"][service]["command"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{service}: command"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let redis = command("redis").join(" ");
    assert!(redis.contains("--appendonly yes"), "Redis keeps the line over a restart: {redis}");
    assert_eq!(command("shop"), ["shop", "--listen", "0.0.0.0:3000"]);
    // Every file a service mounts from the repository is there.
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if let Some(path) = source.strip_prefix("./") {
                assert!(Path::new(DEPLOY).join(path).exists(), "{name:?} mounts {source}, which is not in deploy/");
            }
        }
    }
    assert!(Path::new(DEPLOY).join("secrets/README.md").exists(), "the secrets folder says what to put there");
    // The gateways: two, on the same config, sharing the Redis service, scraped by Prometheus.
    for gateway in ["gateway-1", "gateway-2"] {
        let volumes = format!("{:?}", compose["services"][gateway]["volumes"]);
        assert!(volumes.contains("./anteroom.toml:/etc/anteroom/anteroom.toml"), "{gateway}: {volumes}");
        assert_eq!(command(gateway), ["run", "--config", "/etc/anteroom/anteroom.toml"]);
    }
    let vars = [("ANTEROOM_ADMIN_TOKEN".to_owned(), "a-token-for-the-compose-test".to_owned())];
    let config = anteroom::config::Config::from_toml(&read("deploy/anteroom.toml"), vars).expect("valid config");
    assert_eq!(config.store.backend, anteroom::config::Backend::Redis);
    assert_eq!(config.store.redis_url, "redis://redis:6379/");
    assert_eq!(config.origin.url.to_string(), "http://shop:3000/");
    assert!(!config.tokens.keys.is_empty(), "two instances share one key");
    assert_eq!(config.listen.admin.port(), 9090);
    let prometheus = read("deploy/prometheus/prometheus.yml");
    assert!(prometheus.contains("\"gateway-1:9090\", \"gateway-2:9090\""), "{prometheus}");
}

#[test]
fn the_image_config_has_no_sample_room_and_the_dockerfile_uses_it() {
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("COPY config/container.toml /etc/anteroom/anteroom.toml"), "{dockerfile}");
    assert!(!dockerfile.contains("COPY config/anteroom.toml /etc/anteroom/anteroom.toml"), "{dockerfile}");
    let vars = [("ANTEROOM_ORIGIN__URL".to_owned(), "http://shop.internal:80".to_owned())];
    let config = anteroom::config::Config::from_toml(&read("config/container.toml"), vars).expect("valid");
    assert!(config.rooms.is_empty(), "no sample room in the image's config");
    assert_eq!(config.origin.url.to_string(), "http://shop.internal:80/");
}

#[tokio::test]
async fn the_compose_files_sample_shop_is_a_real_command() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut shop = Command::new(env!("CARGO_BIN_EXE_anteroom"))
        .args(["shop", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let page = loop {
        let req = http::Request::get("/events/1").body(Default::default()).unwrap();
        match support::client::try_send(addr, req).await {
            Ok(answer) => break answer.body_text(),
            Err(e) => assert!(std::time::Instant::now() < deadline, "the shop did not start: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(page.contains("The Exclusive Show"), "{page}");
    shop.kill().unwrap();
    shop.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fragile_shop_slows_down_with_the_load_and_overloads_beyond_its_limit() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut shop = Command::new(env!("CARGO_BIN_EXE_anteroom"))
        .args(["shop", "--fragile", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let get = move || async move {
        let started = std::time::Instant::now();
        let req = http::Request::get("/events/1").body(Default::default()).unwrap();
        support::client::try_send(addr, req).await.map(|answer| (answer.status.as_u16(), started.elapsed()))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let alone = loop {
        match get().await {
            Ok((200, took)) => break took,
            other => assert!(std::time::Instant::now() < deadline, "the shop did not start: {other:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // 30 at once: each takes 28 times as long as alone (1.4 s against 50 ms).
    let crowd: Vec<_> = (0..30).map(|_| tokio::spawn(get())).collect();
    let mut slowest = std::time::Duration::ZERO;
    for answer in crowd {
        let (status, took) = answer.await.unwrap().unwrap();
        assert_eq!(status, 200);
        slowest = slowest.max(took);
    }
    assert!(slowest > alone * 8, "the load slows every request: {slowest:?} at 30 against {alone:?} alone");
    // Beyond 100 in flight it answers 503 at once (the 100 would take most of a minute:
    // they are left to it).
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..130 {
        flood.spawn(get());
    }
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut overloaded = 0;
    while let Ok(Some(answer)) = tokio::time::timeout_at(until, flood.join_next()).await {
        if let Ok(Ok((503, _))) = answer {
            overloaded += 1;
        }
    }
    flood.abort_all();
    assert!(overloaded >= 20, "{overloaded} of 130 overloaded at once");
    shop.kill().unwrap();
    shop.wait().unwrap();
}
