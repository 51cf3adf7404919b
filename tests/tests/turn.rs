//! TURN as its users need it: a publisher and a viewer on two networks
//! with no route between them, both able to reach only the host where
//! the signalling server and Debian's coturn run. With
//! `ice-transport-policy=relay` and the short-lived credentials the
//! server hands out (TURN REST, coturn's `use-auth-secret`), media flows
//! pipeline → pipeline and pipeline → Chromium, and coturn's own log shows
//! the relay carried it; with a wrong TURN secret the viewer fails saying
//! why.
//!
//! Layout: two namespaces (`IsolatedHost`) joined to the test's by veth
//! pairs; the test namespace holds 198.18.250.1 on `lo`, where coturn and
//! the server listen, and each far namespace has a route to that address
//! only. The test namespace does not forward, so the far ones cannot reach
//! each other: the relay is the only path.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_signalling::auth::{Authority, Claims, mint};
use peer_signalling::core::Access;
use peer_signalling::server::ServerConfig;
use peer_signalling::turn::TurnConfig;
use peer_tests::browser::Browser;
use peer_tests::capture::Capture;
use peer_tests::media::close_colour;
use peer_tests::netns::IsolatedHost;
use peer_tests::pages::wait_playing;
use peer_tests::process::ChildProcess;
use peer_tests::{TestServer, init, target_dir, wait_until};

const RELAY_ADDRESS: &str = "198.18.250.1";
const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";
const TURN_SECRET: &str = "coturn-shared-secret";
const BLUE_RGB: [u8; 3] = [0x20, 0x50, 0xd0];

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(sub: &str, grants: &[&str]) -> String {
    mint(
        &Claims {
            sub: Some(sub.into()),
            room: "relay".into(),
            grants: grants.iter().map(|g| g.to_string()).collect(),
            exp: now() + 600,
            nbf: None,
            iat: None,
        },
        "HS256",
        SECRET.as_bytes(),
    )
    .unwrap()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's coturn on the relay address, its log collected.
struct Coturn {
    process: std::process::Child,
    log: Arc<Mutex<Vec<String>>>,
    port: u16,
}

impl Coturn {
    fn start() -> Coturn {
        let port = free_udp_port();
        let mut process = Command::new("turnserver")
            .args([
                "-n",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--fingerprint",
                "--use-auth-secret",
                &format!("--static-auth-secret={TURN_SECRET}"),
                "--realm=gst-peer",
                &format!("--listening-ip={RELAY_ADDRESS}"),
                &format!("--relay-ip={RELAY_ADDRESS}"),
                &format!("--listening-port={port}"),
                "--min-port=49400",
                "--max-port=49500",
                "--log-file=stdout",
                "--simple-log",
                "--verbose",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("coturn's turnserver (Debian package coturn)");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stdout = process.stdout.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let coturn = Coturn { process, log, port };
        wait_until(Duration::from_secs(15), "coturn to listen", || {
            coturn
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains("IPv4. UDP listener opened on"))
                .then_some(())
        });
        coturn
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The relay host address on the test namespace's `lo`, reachable from
/// each far host.
struct RelayAddress;

impl RelayAddress {
    fn add(hosts: &[&IsolatedHost]) -> RelayAddress {
        let status = Command::new("ip")
            .args(["addr", "add", &format!("{RELAY_ADDRESS}/32"), "dev", "lo"])
            .status()
            .unwrap();
        assert!(status.success());
        for host in hosts {
            host.route_to(RELAY_ADDRESS);
        }
        RelayAddress
    }
}

impl Drop for RelayAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{RELAY_ADDRESS}/32"), "dev", "lo"])
            .status();
    }
}

/// One relay address and one coturn at a time: the tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Fields drop in this order: the turn is given up last.
struct Setup {
    publisher_host: IsolatedHost,
    viewer_host: IsolatedHost,
    _relay: RelayAddress,
    coturn: Coturn,
    server: TestServer,
    _turn: std::sync::MutexGuard<'static, ()>,
}

fn setup(turn_secret_given_to_server: &str) -> Setup {
    init();
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let publisher_host = IsolatedHost::create();
    let viewer_host = IsolatedHost::create();
    let relay = RelayAddress::add(&[&publisher_host, &viewer_host]);
    let coturn = Coturn::start();
    let server = TestServer::start_with(ServerConfig {
        bind: format!("{RELAY_ADDRESS}:0").parse().unwrap(),
        access: Access {
            authority: Some(Authority::hs256(SECRET.as_bytes()).unwrap()),
            turn: Some(TurnConfig {
                urls: vec![format!(
                    "turn:{RELAY_ADDRESS}:{}?transport=udp",
                    coturn.port
                )],
                secret: turn_secret_given_to_server.as_bytes().to_vec(),
                ttl: Duration::from_secs(600),
            }),
        },
        ..ServerConfig::default()
    });
    // No path between the two networks but the relay.
    let ping = publisher_host
        .command("ping")
        .args(["-c", "1", "-W", "1", &viewer_host.far_address])
        .output()
        .unwrap();
    assert!(
        !ping.status.success(),
        "the two hosts must not reach each other"
    );
    Setup {
        publisher_host,
        viewer_host,
        _relay: relay,
        coturn,
        server,
        _turn: turn,
    }
}

/// `gst-launch-1.0` with our plugin, inside `host`.
fn pipeline_in(host: &IsolatedHost, description: &str) -> ChildProcess {
    let mut command = host.command("gst-launch-1.0");
    command
        .env("GST_PLUGIN_PATH", target_dir())
        .arg("-e")
        .args(description.split_whitespace())
        .stdin(Stdio::null());
    ChildProcess::spawn(&mut command)
}

fn publish(setup: &Setup) -> ChildProcess {
    pipeline_in(
        &setup.publisher_host,
        &format!(
            "peersink name=s uri=ws://{RELAY_ADDRESS}:{}/relay peer-id=cam token={} \
             ice-transport-policy=relay \
             videotestsrc is-live=true pattern=solid-color foreground-color=0xff2050d0 ! \
             video/x-raw,width=320,height=240,framerate=30/1 ! s.video_0 \
             audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! s.audio_0",
            setup.server.port(),
            token("cam", &["publish"])
        ),
    )
}

#[test]
fn pipeline_to_pipeline_through_coturn_with_relay_only() {
    let setup = setup(TURN_SECRET);
    let _publisher = publish(&setup);
    let capture = Capture::new("turn");
    let _viewer = pipeline_in(
        &setup.viewer_host,
        &format!(
            "peersrc name=r uri=ws://{RELAY_ADDRESS}:{}/relay producer=cam token={} \
             ice-transport-policy=relay {}",
            setup.server.port(),
            token("viewer", &["subscribe"]),
            capture.sinks("r.", "r.")
        ),
    );
    capture.wait(30, "frames through the relay");
    let (width, height, rgb) = capture.picture();
    assert_eq!((width, height), (320, 240));
    assert!(close_colour(rgb, BLUE_RGB, 16), "{rgb:?}");
    let frequency = capture.frequency();
    assert!((frequency - 440.0).abs() < 3.0, "{frequency} Hz");
    // coturn allocated for both peers with our credentials and relayed.
    let allocations = setup.coturn.lines_with("ALLOCATE processed, success");
    assert!(
        allocations.len() >= 2,
        "coturn allocations: {allocations:?}"
    );
    for peer in [":cam", ":viewer"] {
        assert!(
            allocations.iter().any(|line| line.contains(peer)),
            "no allocation for {peer}: {allocations:?}"
        );
    }
    assert!(
        !setup
            .coturn
            .lines_with("CREATE_PERMISSION processed, success")
            .is_empty()
            || !setup
                .coturn
                .lines_with("CHANNEL_BIND processed, success")
                .is_empty(),
        "coturn relayed nothing"
    );
}

#[test]
fn pipeline_to_chromium_through_coturn_with_relay_only() {
    let setup = setup(TURN_SECRET);
    let _publisher = publish(&setup);
    let browser = Browser::start_in(&setup.viewer_host, &[]);
    browser.goto(&format!(
        "http://{RELAY_ADDRESS}:{}/watch?room=relay&producer=cam&relay=1&token={}",
        setup.server.port(),
        token("browser", &["subscribe"])
    ));
    let frame = wait_playing(&browser, Duration::from_secs(40));
    assert_eq!(
        (frame["width"].as_u64(), frame["height"].as_u64()),
        (Some(320), Some(240))
    );
    let rgb = [0, 1, 2].map(|i| frame["rgb"][i].as_u64().unwrap() as u8);
    assert!(close_colour(rgb, BLUE_RGB, 24), "{frame}");
    // Chromium's selected pair is relayed.
    let pair = browser.eval_async(
        "const done = arguments[0];
         window.peerPage.session.pc.getStats().then((report) => {
           let local = null;
           report.forEach((e) => { if (e.type === 'candidate-pair' && e.nominated && e.state === 'succeeded') local = e.localCandidateId; });
           done(local && report.get(local).candidateType);
         });",
        vec![],
    );
    assert_eq!(pair, "relay", "Chromium's path");
    assert!(
        setup
            .coturn
            .lines_with("ALLOCATE processed, success")
            .iter()
            .any(|line| line.contains(":browser"))
    );
}

#[test]
fn a_wrong_turn_secret_fails_saying_the_turn_server_refused() {
    let setup = setup("not the secret coturn has");
    let mut viewer = pipeline_in(
        &setup.viewer_host,
        &format!(
            "peersrc name=r uri=ws://{RELAY_ADDRESS}:{}/relay producer=cam token={} \
             ice-transport-policy=relay r. ! fakesink",
            setup.server.port(),
            token("viewer", &["subscribe"])
        ),
    );
    let _publisher = publish(&setup);
    let line = viewer.wait_line("TURN", Duration::from_secs(60));
    assert!(
        line.contains("no relayed candidate") && line.contains(RELAY_ADDRESS),
        "{line}"
    );
    assert!(
        !setup.coturn.lines_with("401").is_empty()
            || !setup.coturn.lines_with("Unauthorized").is_empty()
            || !setup.coturn.lines_with("wrong").is_empty()
    );
}
