//! `SIGHUP` reloads: the config file swapped in while buyers wait and traffic flows — new
//! rates, texts, templates and certificate take effect, nobody loses a place, no request
//! fails; a broken file, or one that moves a listener, is refused and counted.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use support::origin::Origin;
use support::tls::TestPki;
use support::visitor::Visitor;
use support::Gateway;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const TOKEN: &str = "reload-test-admin-token";

/// What a test's config file says; everything else stays as it is.
struct Settings<'a> {
    rate: u32,
    capacity: u32,
    title: &'a str,
    pki: &'a TestPki,
    template: &'a Path,
}

fn write_config(path: &Path, origin: &Origin, s: &Settings<'_>) {
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
         tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n\
         [origin]\nurl = \"{origin}\"\nmax_requests_per_second = 100000\nburst = 100000\n\
         [admin]\ntoken = \"{TOKEN}\"\n\
         [[rooms]]\nname = \"sale\"\npaths = [\"/events\"]\nadmit_per_minute = {rate}\n\
         max_active_users = {capacity}\ntitle = \"{title}\"\ntemplate = \"{template}\"\n",
        cert = s.pki.cert_pem.display(),
        key = s.pki.key_pem.display(),
        origin = origin.url(),
        rate = s.rate,
        capacity = s.capacity,
        title = s.title,
        template = s.template.display(),
    );
    std::fs::write(path, text).unwrap();
}

fn write_template(path: &Path, version: &str) {
    let page = format!(
        "<!doctype html><html><head>{{{{ head|safe }}}}</head><body>\
         <main {{{{ hooks|safe }}}}>{version}: {{{{ title }}}}</main>{{{{ scripts|safe }}}}</body></html>"
    );
    std::fs::write(path, page).unwrap();
}

/// A TLS connection that trusts only `pki`'s CA; `Err` when the handshake fails.
async fn tls_connect(addr: SocketAddr, pki: &TestPki) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let connector = TlsConnector::from(pki.client_config(&[b"http/1.1"]));
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.map_err(|e| e.to_string())
}

type TlsSender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn tls_sender(addr: SocketAddr, pki: &TestPki) -> Result<TlsSender, String> {
    let tls = tls_connect(addr, pki).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn tls_get(sender: &mut TlsSender, path: &str) -> Result<(u16, String), String> {
    let req = Request::get(path).header("host", "shop.example").body(Empty::new()).unwrap();
    let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Traffic that runs through the reloads: keep-alive requests to the shop, and new
/// connections each time. Counts what was answered and what failed.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Self {
        let (stop, ok, failed) = (Arc::new(AtomicBool::new(false)), Arc::default(), Arc::default());
        let tasks = (0..4)
            .map(|i| {
                let (stop, ok, failed): (Arc<AtomicBool>, Arc<AtomicU64>, Arc<AtomicU64>) =
                    (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
                tokio::spawn(async move {
                    let mut keep_alive = Visitor::new(addr);
                    while !stop.load(Relaxed) {
                        // Half the tasks reuse one connection, half open one per request.
                        let answer = if i % 2 == 0 {
                            keep_alive.get("/shop/item").await
                        } else {
                            match support::client::try_send(
                                addr,
                                Request::get("/shop/item").body(Default::default()).unwrap(),
                            )
                            .await
                            {
                                Ok(answer) => answer,
                                Err(_) => {
                                    failed.fetch_add(1, Relaxed);
                                    continue;
                                }
                            }
                        };
                        let counter = if answer.status == 200 { &ok } else { &failed };
                        counter.fetch_add(1, Relaxed);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
            .collect();
        Self { stop, ok, failed, tasks }
    }

    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Relaxed);
        for task in self.tasks {
            task.await.expect("load task");
        }
        (self.ok.load(Relaxed), self.failed.load(Relaxed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_swaps_rates_texts_and_certificate_and_nobody_loses_a_place() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let origin = Origin::start().await;
    let (old_pki, new_pki) = (TestPki::new(), TestPki::new());
    let dir = tempfile::tempdir().unwrap();
    let (file, template) = (dir.path().join("anteroom.toml"), dir.path().join("sale.html"));
    write_template(&template, "Version one");
    let before = Settings { rate: 1, capacity: 1, title: "Winter sale", pki: &old_pki, template: &template };
    write_config(&file, &origin, &before);
    let gw = Gateway::from_file(&file).await;
    let https = gw.https_addr.unwrap();

    // One buyer inside holds the only slot; five wait in line.
    let _inside = gw.take_first_slot("/events/1").await;
    let mut waiters = Vec::new();
    for _ in 0..5 {
        let mut waiter = Visitor::new(gw.addr);
        let status = waiter.join("/events/1").await;
        assert_eq!(status["state"], "waiting", "{status}");
        waiters.push((waiter, status["queue_id"].clone(), status["position"].as_u64().unwrap()));
    }
    let page = Visitor::new(gw.addr).get("/events/2").await.body_text();
    assert!(page.contains("Version one: Winter sale"), "{page}");
    assert!(tls_connect(https, &new_pki).await.is_err(), "the new certificate is not served yet");
    let mut open_tls = tls_sender(https, &old_pki).await.expect("the old certificate is served");
    assert_eq!(tls_get(&mut open_tls, "/shop/item").await.unwrap().0, 200);

    let load = Load::start(gw.addr);
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_template(&template, "Version two");
    let after = Settings { rate: 6_000, title: "Winter sale, second wave", pki: &new_pki, ..before };
    write_config(&file, &origin, &after);
    assert!(gw.reload().await, "the reload was applied");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The new template and texts, the new certificate for new connections; the open
    // connection goes on.
    let page = Visitor::new(gw.addr).get("/events/2").await.body_text();
    assert!(page.contains("Version two: Winter sale, second wave"), "{page}");
    assert!(tls_connect(https, &old_pki).await.is_err(), "new connections get the new certificate");
    let mut fresh = tls_sender(https, &new_pki).await.expect("the new certificate is served");
    assert_eq!(tls_get(&mut fresh, "/shop/item").await.unwrap().0, 200);
    assert_eq!(tls_get(&mut open_tls, "/shop/item").await.unwrap().0, 200, "an open connection survives");

    // Everyone kept their place and their order.
    for (waiter, queue_id, position) in &mut waiters {
        let status = waiter.status("sale").await;
        assert_eq!((&status["queue_id"], status["position"].as_u64()), (&*queue_id, Some(*position)), "{status}");
    }

    // A second reload makes room inside, still under load.
    write_config(&file, &origin, &Settings { capacity: 100, ..after });
    assert!(gw.reload().await, "the second reload was applied");
    let (ok, failed) = load.finish().await;
    assert_eq!(failed, 0, "no request failed during the reloads ({ok} answered)");
    assert!(ok > 20, "traffic flowed through the reloads: {ok}");

    // The new limits are in force, for the store's numbers as for the line.
    let (status, stats) = gw.admin_api("GET", "/admin/rooms/sale", Some(TOKEN), "").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!((stats["admit_per_minute"].as_u64(), stats["max_active_users"].as_u64()), (Some(6_000), Some(100)));
    // The faster rate and the room inside let the line in.
    for (waiter, _, _) in &mut waiters {
        waiter.wait_until_admitted("sale", Duration::from_secs(10)).await;
    }
}

#[tokio::test]
async fn a_broken_file_or_a_moved_listener_is_refused_counted_and_the_old_config_serves_on() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let origin = Origin::start().await;
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let (file, template) = (dir.path().join("anteroom.toml"), dir.path().join("sale.html"));
    write_template(&template, "Version one");
    let settings = Settings { rate: 60, capacity: 1, title: "Winter sale", pki: &pki, template: &template };
    write_config(&file, &origin, &settings);
    let gw = Gateway::from_file(&file).await;
    let _inside = gw.take_first_slot("/events/1").await;
    let mut waiter = Visitor::new(gw.addr);
    let queue_id = waiter.join("/events/1").await["queue_id"].clone();

    let good = std::fs::read_to_string(&file).unwrap();
    let broken = [
        good.replace("[origin]", "[origin"),
        good.replace("admit_per_minute = 60", "admit_per_minute = 0"),
        good.replace("http = \"127.0.0.1:0\"", "http = \"127.0.0.1:1\""),
        good.replace(&pki.cert_pem.display().to_string(), "/no/such/cert.pem"),
    ];
    for (i, text) in broken.iter().enumerate() {
        std::fs::write(&file, text).unwrap();
        assert!(!gw.reload().await, "refused: {text}");
        let metrics = gw.metrics().await;
        let refused = format!("anteroom_config_reloads_total{{result=\"failure\"}} {}", i + 1);
        assert!(metrics.contains(&refused), "{metrics}");
    }
    // A template that does not compile is refused the same way.
    std::fs::write(&file, &good).unwrap();
    std::fs::write(&template, "<html>{% if %}</html>").unwrap();
    assert!(!gw.reload().await, "a broken template is refused");

    // The old config serves on, and the waiter's place is where it was.
    let page = Visitor::new(gw.addr).get("/events/2").await.body_text();
    assert!(page.contains("Version one: Winter sale"), "{page}");
    let status = waiter.status("sale").await;
    assert_eq!((&status["queue_id"], &status["state"]), (&queue_id, &serde_json::json!("waiting")), "{status}");
    assert!(gw.metrics().await.contains("anteroom_config_reloads_total{result=\"success\"} 0"));

    // Mended, the file loads.
    write_template(&template, "Version three");
    assert!(gw.reload().await);
    let page = Visitor::new(gw.addr).get("/events/2").await.body_text();
    assert!(page.contains("Version three"), "{page}");
}

#[tokio::test]
async fn without_configured_keys_the_random_key_survives_a_reload() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("anteroom.toml");
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[origin]\nurl = \"{}\"\n\
         [[rooms]]\nname = \"sale\"\npaths = [\"/events\"]\nadmit_per_minute = 60\nmax_active_users = 1\n",
        origin.url()
    );
    std::fs::write(&file, &text).unwrap();
    let gw = Gateway::from_file(&file).await;
    let mut inside = gw.take_first_slot("/events/1").await;
    let mut waiter = Visitor::new(gw.addr);
    let queue_id = waiter.join("/events/1").await["queue_id"].clone();
    std::fs::write(&file, text.replace("admit_per_minute = 60", "admit_per_minute = 61")).unwrap();
    assert!(gw.reload().await);
    // The token and the queue cookie signed before the reload still count.
    assert_eq!(inside.get("/events/1").await.body_text(), "hello", "the buyer inside stays inside");
    let status = waiter.status("sale").await;
    assert_eq!((&status["queue_id"], &status["state"]), (&queue_id, &serde_json::json!("waiting")), "{status}");
}
