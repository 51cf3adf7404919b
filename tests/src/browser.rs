//! Debian's Chromium, headless, driven over WebDriver (chromedriver) from
//! the tests. It runs in the tests' loopback-only namespace, with fake
//! camera and microphone and a fresh profile, and never downloads anything.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::RUNTIME;
use crate::process::ChildProcess;

pub struct Browser {
    client: Option<Client>,
    _driver: ChildProcess,
    profile: PathBuf,
}

fn chromium_binary() -> &'static str {
    // /usr/bin/chromium is a wrapper script adding flags of its own.
    if Path::new("/usr/lib/chromium/chromium").exists() {
        "/usr/lib/chromium/chromium"
    } else {
        "/usr/bin/chromium"
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts Chromium; `extra` adds flags (fake capture files, trusted
    /// certificates).
    pub fn start(extra: &[String]) -> Browser {
        Self::launch(extra, true)
    }

    /// A browser that refuses camera and microphone, as a person clicking
    /// "Block" would.
    pub fn start_denying_media() -> Browser {
        Self::launch(&["--deny-permission-prompts".to_owned()], false)
    }

    /// Chromium (and its chromedriver) inside `host`'s namespace, driven
    /// from the test's over the veth pair: a browser on another network.
    pub fn start_in(host: &crate::netns::IsolatedHost, extra: &[String]) -> Browser {
        let port = free_port();
        let mut command = host.command("chromedriver");
        command
            .arg(format!("--port={port}"))
            .arg(format!("--allowed-ips={}", host.near_address));
        Self::connect(
            command,
            &format!("http://{}:{port}", host.far_address),
            extra,
            true,
        )
    }

    fn launch(extra: &[String], consent: bool) -> Browser {
        let port = free_port();
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        Self::connect(command, &format!("http://127.0.0.1:{port}"), extra, consent)
    }

    fn connect(mut command: Command, url: &str, extra: &[String], consent: bool) -> Browser {
        let port = url.rsplit(':').next().unwrap().to_owned();
        let driver = ChildProcess::spawn(&mut command);
        let profile =
            std::env::temp_dir().join(format!("gst-peer-chromium-{}-{port}", std::process::id()));
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--allow-loopback-in-peer-connection",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !consent {
            args.retain(|arg| arg != "--use-fake-ui-for-media-stream");
        }
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().cloned());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium_binary(), "args": args },
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = url.to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let attempt = RUNTIME.block_on(async {
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await
            });
            match attempt {
                Ok(client) => break client,
                Err(err) if Instant::now() < deadline => {
                    // chromedriver not listening yet.
                    let _ = err;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => panic!("cannot start Chromium through chromedriver: {err}"),
            }
        };
        Browser {
            client: Some(client),
            _driver: driver,
            profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        RUNTIME
            .block_on(self.client().goto(url))
            .unwrap_or_else(|err| panic!("cannot open {url}: {err}"));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        RUNTIME
            .block_on(self.client().execute(script, args))
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Runs an async function body whose last argument is the callback.
    pub fn eval_async(&self, script: &str, args: Vec<Value>) -> Value {
        RUNTIME
            .block_on(self.client().execute_async(script, args))
            .unwrap_or_else(|err| panic!("async script failed: {err}\n{script}"))
    }

    /// Evaluates `expression` until it is truthy; returns its value.
    pub fn wait_for(&self, expression: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let script = format!("try {{ return ({expression}); }} catch (e) {{ return null; }}");
        loop {
            let value = self.eval(&script, vec![]);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                let state = self.eval(
                    "return JSON.stringify({state: window.peerPage && window.peerPage.state, \
                     error: window.peerPage && window.peerPage.error, \
                     status: (document.getElementById('status') || {}).textContent});",
                    vec![],
                );
                panic!("timed out after {timeout:?} waiting for `{expression}`; page: {state}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes a PNG of the page to `tests/artifacts/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = RUNTIME
            .block_on(self.client().screenshot())
            .expect("screenshot");
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = RUNTIME.block_on(client.close());
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
