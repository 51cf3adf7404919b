//! The `signaller` child object of peersink and peersrc: the protocol's
//! settings that have no place in the uri, set the GStreamer way through
//! the element's GstChildProxy (`peersink signaller::token=...`), and what
//! the running signaller reports back (`signaller::resource-url`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{ProtocolSettings, Status};

const DEFAULT_TIMEOUT_S: u32 = 15;
const DEFAULT_GATHERING_TIMEOUT_MS: u32 = 1000;
const DEFAULT_RECONNECT_TIMEOUT_S: u32 = 60;

/// One line per property, for the element's `signaller` property blurb:
/// gst-inspect-1.0 does not list a child object's properties itself.
pub const SUMMARY: &str = "Protocol settings, set as signaller::NAME=VALUE: \
    token (Bearer token for WHIP/WHEP, overriding ?token= in the uri; the PeerJS token), \
    timeout (seconds an HTTP request may take, default 15), \
    gathering-timeout (ms to gather ICE candidates before posting an offer, default 1000), \
    viewer-offer (our protocol: peersrc makes the offer, default false), \
    reconnect-timeout (our protocol and PeerJS: seconds to keep reconnecting to a lost server, default 60, 0 = never); \
    read-only: protocol (native, whip, whep, peerjs), resource-url (WHIP/WHEP session URL: it grants \
    control of the session, keep it private)";

mod imp {
    use super::*;

    #[derive(Debug)]
    struct Values {
        token: Option<String>,
        timeout_s: u32,
        gathering_timeout_ms: u32,
        viewer_offer: bool,
        reconnect_timeout_s: u32,
    }

    impl Default for Values {
        fn default() -> Self {
            Values {
                token: None,
                timeout_s: DEFAULT_TIMEOUT_S,
                gathering_timeout_ms: DEFAULT_GATHERING_TIMEOUT_MS,
                viewer_offer: false,
                reconnect_timeout_s: DEFAULT_RECONNECT_TIMEOUT_S,
            }
        }
    }

    #[derive(Debug, Default)]
    pub struct SignallerSettings {
        values: Mutex<Values>,
        pub(super) status: Arc<Mutex<Status>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for SignallerSettings {
        const NAME: &'static str = "GstPeerSignaller";
        type Type = super::SignallerSettings;
        type ParentType = glib::Object;
    }

    impl ObjectImpl for SignallerSettings {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: std::sync::LazyLock<Vec<glib::ParamSpec>> = std::sync::LazyLock::new(
                || {
                    vec![
                        glib::ParamSpecString::builder("token")
                            .nick("Token")
                            .blurb(
                                "Bearer token sent to WHIP/WHEP endpoints \
                                 (overrides ?token= in the uri)",
                            )
                            .build(),
                        glib::ParamSpecUInt::builder("timeout")
                            .nick("Timeout")
                            .blurb("Seconds an HTTP request (WHIP/WHEP POST, PATCH) may take")
                            .minimum(1)
                            .maximum(300)
                            .default_value(DEFAULT_TIMEOUT_S)
                            .build(),
                        glib::ParamSpecUInt::builder("gathering-timeout")
                            .nick("Gathering timeout")
                            .blurb(
                                "Milliseconds to gather ICE candidates before posting an offer \
                                 (WHIP/WHEP); later ones are trickled when the server allows",
                            )
                            .maximum(30_000)
                            .default_value(DEFAULT_GATHERING_TIMEOUT_MS)
                            .build(),
                        glib::ParamSpecBoolean::builder("viewer-offer")
                            .nick("Viewer offers")
                            .blurb(
                                "Our protocol: peersrc makes the offer (in start-session) \
                                 instead of waiting for the producer's",
                            )
                            .default_value(false)
                            .build(),
                        glib::ParamSpecUInt::builder("reconnect-timeout")
                            .nick("Reconnect timeout")
                            .blurb(
                                "Our protocol and PeerJS: seconds to keep reconnecting (with backoff) to a \
                                 server that went away, media flowing meanwhile; 0: the element \
                                 fails at once",
                            )
                            .maximum(86_400)
                            .default_value(DEFAULT_RECONNECT_TIMEOUT_S)
                            .build(),
                        glib::ParamSpecString::builder("protocol")
                            .nick("Protocol")
                            .blurb(
                                "native, whip, whep or peerjs: the protocol the uri selects \
                                 (once started)",
                            )
                            .read_only()
                            .build(),
                        glib::ParamSpecString::builder("resource-url")
                            .nick("Resource URL")
                            .blurb(
                                "WHIP/WHEP: the session's resource URL (Location); it grants \
                                 control of the session, keep it private",
                            )
                            .read_only()
                            .build(),
                    ]
                },
            );
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut values = self.values.lock().unwrap();
            match pspec.name() {
                "token" => {
                    values.token = value
                        .get::<Option<String>>()
                        .expect("type checked upstream")
                        .filter(|t| !t.is_empty())
                }
                "timeout" => values.timeout_s = value.get().expect("type checked upstream"),
                "gathering-timeout" => {
                    values.gathering_timeout_ms = value.get().expect("type checked upstream")
                }
                "viewer-offer" => values.viewer_offer = value.get().expect("type checked upstream"),
                "reconnect-timeout" => {
                    values.reconnect_timeout_s = value.get().expect("type checked upstream")
                }
                other => unreachable!("unknown property {other}"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let values = self.values.lock().unwrap();
            let status = self.status.lock().unwrap();
            match pspec.name() {
                "token" => values.token.to_value(),
                "timeout" => values.timeout_s.to_value(),
                "gathering-timeout" => values.gathering_timeout_ms.to_value(),
                "viewer-offer" => values.viewer_offer.to_value(),
                "reconnect-timeout" => values.reconnect_timeout_s.to_value(),
                "protocol" => status.protocol.to_value(),
                "resource-url" => status.resource_url.to_value(),
                other => unreachable!("unknown property {other}"),
            }
        }
    }

    impl SignallerSettings {
        pub(super) fn snapshot(&self) -> ProtocolSettings {
            let values = self.values.lock().unwrap();
            ProtocolSettings {
                token: values.token.clone(),
                timeout: Duration::from_secs(values.timeout_s as u64),
                gathering_timeout: Duration::from_millis(values.gathering_timeout_ms as u64),
                viewer_offer: values.viewer_offer,
                reconnect_timeout: Duration::from_secs(values.reconnect_timeout_s as u64),
            }
        }
    }
}

glib::wrapper! {
    pub struct SignallerSettings(ObjectSubclass<imp::SignallerSettings>);
}

impl Default for SignallerSettings {
    fn default() -> Self {
        glib::Object::new()
    }
}

impl SignallerSettings {
    /// The settings as they are now, for a signaller about to start.
    pub fn snapshot(&self) -> ProtocolSettings {
        self.imp().snapshot()
    }

    /// Where the running signaller reports (shared with it).
    pub fn status(&self) -> Arc<Mutex<Status>> {
        self.imp().status.clone()
    }

    /// Forgets what the last run reported.
    pub fn reset_status(&self) {
        *self.imp().status.lock().unwrap() = Status::default();
    }
}
