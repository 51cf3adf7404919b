//! A second test host: a network namespace of our own, joined to the
//! test's namespace by a veth pair, where loss and rate limits can be put
//! on one viewer's path only. Addresses come from 198.18.0.0/15 (RFC 2544,
//! reserved for benchmarking) and exist only on the two veth ends; the
//! namespace and the pair are removed on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct IsolatedHost {
    /// Namespace name (`ip netns exec NAME ...`).
    pub name: String,
    /// Our end of the veth pair, in the test's namespace.
    pub near_interface: String,
    pub far_interface: String,
    /// Address of our end: where the far host reaches the test's servers.
    pub near_address: String,
    pub far_address: String,
}

fn run(args: &[&str]) {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|err| panic!("cannot run {args:?}: {err}"));
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Interfaces and namespaces are only made from a test namespace holding
/// nothing but `lo` and pairs made here (scripts/test.sh gives one).
fn require_private_namespace() {
    let interfaces = if_addrs::get_if_addrs().expect("interfaces can be listed");
    let foreign: Vec<_> = interfaces
        .iter()
        .map(|interface| interface.name.as_str())
        .filter(|name| *name != "lo" && !name.starts_with("pn"))
        .collect();
    assert!(
        foreign.is_empty(),
        "refusing to add a veth pair outside a private test namespace (interfaces: {foreign:?}); \
         run the test under `unshare -n` (scripts/test.sh)"
    );
}

impl IsolatedHost {
    /// Creates the namespace and the veth pair, both ends up, IPv6 off
    /// (fewer ICE candidates), loopback up on the far side.
    pub fn create() -> IsolatedHost {
        require_private_namespace();
        let index = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{index}", std::process::id() % 100_000);
        let subnet = (std::process::id() + index) % 250;
        let host = IsolatedHost {
            name: format!("peertest{tag}"),
            near_interface: format!("pn{tag}"),
            far_interface: format!("pf{tag}"),
            near_address: format!("198.18.{subnet}.1"),
            far_address: format!("198.18.{subnet}.2"),
        };
        let (ns, near, far) = (&host.name, &host.near_interface, &host.far_interface);
        run(&["ip", "netns", "add", ns]);
        run(&[
            "ip", "link", "add", near, "type", "veth", "peer", "name", far, "netns", ns,
        ]);
        let _ = Command::new("sysctl")
            .args(["-qw", &format!("net.ipv6.conf.{near}.disable_ipv6=1")])
            .output();
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", host.near_address),
            "dev",
            near,
        ]);
        run(&["ip", "link", "set", near, "up"]);
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ])
            .output();
        run(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/30", host.far_address),
            "dev",
            far,
        ]);
        run(&["ip", "-n", ns, "link", "set", far, "up"]);
        run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        host.wait_until_running();
        host
    }

    /// libnice gathers only from interfaces flagged RUNNING, which a veth
    /// end becomes once the kernel's link watch has seen its carrier (up
    /// to a second or more after `link set up`): a viewer started before
    /// that would gather no candidate at all.
    fn wait_until_running(&self) {
        let running = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("state UP"))
        };
        crate::wait_until(
            std::time::Duration::from_secs(10),
            "the veth pair to come up",
            || {
                (running(&["-o", "link", "show", "dev", &self.near_interface])
                    && running(&[
                        "-n",
                        &self.name,
                        "-o",
                        "link",
                        "show",
                        "dev",
                        &self.far_interface,
                    ]))
                .then_some(())
            },
        );
    }

    /// Lets the far host reach `address` (one of the test namespace's own
    /// addresses) through the near end of its pair; nothing else is routed.
    pub fn route_to(&self, address: &str) {
        run(&[
            "ip",
            "-n",
            &self.name,
            "route",
            "add",
            &format!("{address}/32"),
            "via",
            &self.near_address,
        ]);
    }

    /// A command to run inside the namespace.
    /// `gst-launch-1.0` with peersink in this host, broadcasting 320x240
    /// blue (0xff2050d0) and a 440 Hz tone as `cam` in room `paths` of the
    /// server on `server_port` (reached at the host's near address); once
    /// its `peer-ready` is printed.
    pub fn broadcast(&self, server_port: u16) -> crate::process::ChildProcess {
        let mut sender = crate::process::ChildProcess::spawn(
            self.command("gst-launch-1.0")
                .env("GST_PLUGIN_PATH", crate::target_dir())
                .env("GST_DEBUG", "peersink:4,default:4")
                .args(["-m", "-e"])
                .args(
                    format!(
                        "peersink name=s uri=ws://{}:{server_port}/paths peer-id=cam stats-interval=1000 \
                         videotestsrc is-live=true pattern=solid-color foreground-color=0xff2050d0 ! \
                         video/x-raw,width=320,height=240,framerate=30/1 ! s.video_0 \
                         audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! s.audio_0",
                        self.near_address
                    )
                    .split_whitespace(),
                )
                .stdin(std::process::Stdio::null()),
        );
        sender.wait_line("peer-ready", std::time::Duration::from_secs(20));
        sender
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Drops `percent`% of the UDP packets arriving on the far side, at random.
    pub fn drop_incoming_udp(&self, percent: u32) {
        let probability = format!("{:.2}", percent as f64 / 100.0);
        run(&[
            "ip",
            "netns",
            "exec",
            &self.name,
            "iptables",
            "-A",
            "INPUT",
            "-i",
            &self.far_interface,
            "-p",
            "udp",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &probability,
            "-j",
            "DROP",
        ]);
    }

    /// Limits what is sent towards the far side to `kbit` kbit/s (a token
    /// bucket with a short queue: excess is dropped, as on a slow link).
    pub fn limit_rate(&self, kbit: u32) {
        run(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.near_interface,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            "32kb",
            "latency",
            "50ms",
        ]);
    }

    /// Limits what the far side sends (a publisher's uplink) to `kbit`
    /// kbit/s, the same way as [`Self::limit_rate`].
    pub fn limit_outgoing_rate(&self, kbit: u32) {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.name,
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.far_interface,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            "32kb",
            "latency",
            "50ms",
        ]);
    }

    pub fn remove_rate_limit(&self) {
        run(&["tc", "qdisc", "del", "dev", &self.near_interface, "root"]);
    }
}

impl Drop for IsolatedHost {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; the namespace takes its rules.
        let _ = Command::new("ip")
            .args(["link", "del", &self.near_interface])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Drops every packet in and out of `interface` (this namespace's end of
/// the pair) but the signalling server's TCP, while it lives: UDP and
/// ICE-TCP alike, so no other media path is left.
pub struct PathBlocked {
    interface: String,
    server_port: u16,
}

impl PathBlocked {
    fn rules(&self) -> [Vec<String>; 4] {
        let (interface, port) = (self.interface.as_str(), self.server_port.to_string());
        let rule = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        [
            rule(&[
                "INPUT", "-i", interface, "-p", "tcp", "--dport", &port, "-j", "ACCEPT",
            ]),
            rule(&["INPUT", "-i", interface, "-j", "DROP"]),
            rule(&[
                "OUTPUT", "-o", interface, "-p", "tcp", "--sport", &port, "-j", "ACCEPT",
            ]),
            rule(&["OUTPUT", "-o", interface, "-j", "DROP"]),
        ]
    }

    fn iptables(action: &str, rule: &[String]) -> bool {
        Command::new("iptables")
            .arg(action)
            .args(rule)
            .status()
            .is_ok_and(|status| status.success())
    }

    pub fn block(interface: &str, server_port: u16) -> PathBlocked {
        let blocked = PathBlocked {
            interface: interface.to_owned(),
            server_port,
        };
        for rule in blocked.rules() {
            assert!(Self::iptables("-A", &rule), "iptables -A {rule:?} failed");
        }
        blocked
    }
}

impl Drop for PathBlocked {
    fn drop(&mut self) {
        for rule in self.rules() {
            Self::iptables("-D", &rule);
        }
    }
}
