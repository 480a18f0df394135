//! Real headless Chromium, driven over WebDriver (chromedriver started on a free port by
//! the test): navigate, read the page, open tabs, take screenshots.

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::error::Error as _;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

pub struct Browser {
    driver: SocketAddr,
    session: String,
    child: Child,
    _profile: tempfile::TempDir,
}

/// How to start the browser.
#[derive(Default)]
pub struct Options {
    /// `Accept-Language` the browser sends (e.g. "de").
    pub language: Option<&'static str>,
    pub javascript_off: bool,
}

impl Browser {
    pub async fn start(options: Options) -> Self {
        // On a loaded machine chromedriver has now and then dropped the very first
        // connection (or died) while Chromium started: such a start is tried afresh, with a
        // new driver, a few times before the test is failed.
        let mut attempt = 1;
        loop {
            match Self::try_start(&options).await {
                Ok(browser) => return browser,
                Err(error) if attempt < 3 => eprintln!("browser start {attempt} failed ({error}); trying again"),
                Err(error) => panic!("browser did not start: {error}"),
            }
            attempt += 1;
        }
    }

    async fn try_start(options: &Options) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
        let profile = tempfile::tempdir().unwrap();
        // Built now so that a failed start below kills the driver (in Drop).
        let mut browser =
            Self { driver: SocketAddr::from(([127, 0, 0, 1], port)), session: String::new(), child, _profile: profile };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(browser.driver).await.is_err() {
            if Instant::now() >= deadline {
                return Err("chromedriver did not listen within 20 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // No network at start (this machine has none), and a fresh profile.
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=420,900".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let mut prefs = serde_json::Map::new();
        if let Some(language) = options.language {
            args.push(format!("--lang={language}"));
            prefs.insert("intl.accept_languages".into(), json!(language));
        }
        if options.javascript_off {
            prefs.insert("profile.managed_default_content_settings.javascript".into(), json!(2));
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium(), "args": args, "prefs": prefs }
        }}});
        let created = browser.send(Method::POST, "/session", Some(capabilities)).await?;
        let created = created.map_err(|refusal| format!("chromedriver refused the session: {refusal}"))?;
        browser.session = created["sessionId"].as_str().ok_or("the new session has no id")?.to_owned();
        Ok(browser)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method.clone(), path, body).await {
            Ok(value) => value,
            Err(error) => panic!("webdriver {method} {path}: {error}"),
        }
    }

    /// A WebDriver call; `Err` with the driver's error object when it refuses.
    async fn try_call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        match self.send(method.clone(), path, body).await {
            Ok(answer) => answer,
            Err(error) => panic!("webdriver {method} {path}: {error}"),
        }
    }

    /// Sends one WebDriver call: the outer `Err` when no answer came, the inner one with the
    /// driver's error object when it answered with a refusal.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Result<Value, Value>, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        // chromedriver, on a loaded machine, now and then closes or resets a connection
        // without an answer: such a call is made again, on a new connection.
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let stream = TcpStream::connect(self.driver).await.map_err(|e| format!("cannot connect: {e}"))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(conn);
            let req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap();
            match sender.send_request(req).await {
                Ok(response) => break response,
                Err(e) if attempt < 3 => {
                    eprintln!("webdriver {method} {path}: no answer ({e}: {:?}); sending again", e.source());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(format!("no answer: {e} ({:?})", e.source())),
            }
        };
        let bytes = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not WebDriver JSON: {e}"))?;
        if value["value"]["error"].is_string() {
            return Ok(Err(value["value"].clone()));
        }
        Ok(Ok(value["value"].clone()))
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn open(&self, url: &str) {
        self.call(Method::POST, &self.session_path("/url"), Some(json!({ "url": url }))).await;
    }

    pub async fn url(&self) -> String {
        self.call(Method::GET, &self.session_path("/url"), None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(Method::POST, &self.session_path("/execute/sync"), Some(json!({ "script": script, "args": [] })))
            .await
    }

    /// Runs `script` (a function body that ends by calling `done(value)`) and returns the
    /// value it was called with (within the driver's script timeout, 30 s).
    pub async fn eval_async(&self, script: &str) -> Value {
        let script = format!("var done = arguments[arguments.length - 1];\n{script}");
        self.call(Method::POST, &self.session_path("/execute/async"), Some(json!({ "script": script, "args": [] })))
            .await
    }

    /// The names of the cookies the browser holds for the page (HttpOnly ones too).
    pub async fn cookie_names(&self) -> Vec<String> {
        let cookies = self.call(Method::GET, &self.session_path("/cookie"), None).await;
        let names = cookies.as_array().into_iter().flatten().filter_map(|c| c["name"].as_str());
        names.map(str::to_owned).collect()
    }

    /// The text of the first element matching `selector` (`None` if there is none).
    pub async fn text(&self, selector: &str) -> Option<String> {
        let script = format!("var e = document.querySelector({}); return e ? e.textContent : null;", json!(selector));
        self.eval(&script).await.as_str().map(str::to_owned)
    }

    /// The whole page's HTML as the browser has it now.
    pub async fn html(&self) -> String {
        // Without JavaScript, execute/sync still works (it is the driver's, not the page's).
        self.eval("return document.documentElement.outerHTML;").await.as_str().unwrap_or_default().to_owned()
    }

    /// A Chrome DevTools Protocol command in the current tab (through chromedriver).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(Method::POST, &self.session_path("/goog/cdp/execute"), Some(json!({ "cmd": cmd, "params": params })))
            .await
    }

    /// Puts another tab in front, as a buyer switching tabs does: this one's
    /// `visibilityState` turns `hidden` (and its timers are throttled). Returns the tab in
    /// front, for [`Browser::show`].
    pub async fn hide(&self) -> String {
        let front = self.cdp("Target.createTarget", json!({ "url": "about:blank", "background": false })).await;
        front["targetId"].as_str().expect("a target id").to_owned()
    }

    /// Brings this tab back to the front (closing the one `hide` opened): `visibilitychange`.
    pub async fn show(&self, front: &str) {
        let this = self.cdp("Target.getTargetInfo", json!({})).await;
        let this = this["targetInfo"]["targetId"].as_str().expect("this tab's target id").to_owned();
        self.cdp("Target.activateTarget", json!({ "targetId": this })).await;
        self.cdp("Target.closeTarget", json!({ "targetId": front })).await;
    }

    /// The text of the open `confirm()` dialog, then accepts (`true`) or dismisses it.
    pub async fn answer_dialog(&self, accept: bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let text = loop {
            let answer = self.try_call(Method::GET, &self.session_path("/alert/text"), None).await;
            if let Some(text) = answer.ok().as_ref().and_then(Value::as_str) {
                break text.to_owned();
            }
            assert!(Instant::now() < deadline, "no dialog opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let action = if accept { "/alert/accept" } else { "/alert/dismiss" };
        self.call(Method::POST, &self.session_path(action), Some(json!({}))).await;
        text
    }

    /// The current tab's WebDriver handle.
    pub async fn tab(&self) -> String {
        self.call(Method::GET, &self.session_path("/window"), None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Switches WebDriver's commands to the tab `handle`.
    pub async fn switch_to(&self, handle: &str) {
        self.call(Method::POST, &self.session_path("/window"), Some(json!({ "handle": handle }))).await;
    }

    /// Opens a new tab and switches to it.
    pub async fn new_tab(&self) {
        let tab = self.call(Method::POST, &self.session_path("/window/new"), Some(json!({ "type": "tab" }))).await;
        let handle = tab["handle"].as_str().expect("a tab handle").to_owned();
        self.call(Method::POST, &self.session_path("/window"), Some(json!({ "handle": handle }))).await;
    }

    /// Saves a PNG screenshot under `target/screenshots/NAME.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call(Method::GET, &self.session_path("/screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(encoded.as_str().unwrap_or_default()).unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Waits until `check` holds (polling every 100 ms), up to `within`.
    pub async fn wait_for(&self, what: &str, within: Duration, mut check: impl AsyncFnMut(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !check(self).await {
            assert!(
                Instant::now() < deadline,
                "browser: {what} did not happen within {within:?} (at {})",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium (blocking: Drop cannot await); then the driver.
        use std::io::{Read, Write};
        let stream = (!self.session.is_empty()).then(|| std::net::TcpStream::connect(self.driver));
        if let Some(Ok(mut stream)) = stream {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> &'static str {
    if std::path::Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium"
    } else {
        "chromium"
    }
}
