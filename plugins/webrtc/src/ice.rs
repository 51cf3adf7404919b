//! Which local addresses ICE gathers on.
//!
//! libnice skips loopback interfaces when it enumerates addresses itself, so
//! on a host whose only interface is `lo` (a container, a test namespace) a
//! webrtcbin gathers no candidates at all. GStreamer 1.22 has no property
//! for this; libnice's `nice_agent_add_local_address()` does it, and once
//! any address is added libnice gathers on those only, which also lets users
//! pin ICE to chosen interfaces on multi-homed servers.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::net::IpAddr;

use gst::glib;
use gst::prelude::*;

unsafe extern "C" {
    fn nice_address_new() -> *mut c_void;
    fn nice_address_free(addr: *mut c_void);
    fn nice_address_set_from_string(addr: *mut c_void, text: *const c_char) -> c_int;
    fn nice_agent_add_local_address(agent: *mut c_void, addr: *mut c_void) -> c_int;
    fn nice_agent_restart_stream(agent: *mut c_void, stream_id: c_uint) -> c_int;
    fn nice_agent_get_local_credentials(
        agent: *mut c_void,
        stream_id: c_uint,
        ufrag: *mut *mut c_char,
        pwd: *mut *mut c_char,
    ) -> c_int;
    fn nice_agent_get_local_candidates(
        agent: *mut c_void,
        stream_id: c_uint,
        component_id: c_uint,
    ) -> *mut GSList;
    fn nice_agent_generate_local_candidate_sdp(
        agent: *mut c_void,
        candidate: *mut c_void,
    ) -> *mut c_char;
    fn nice_candidate_free(candidate: *mut c_void);
    fn g_slist_free(list: *mut GSList);
    fn g_free(pointer: *mut c_void);
}

#[repr(C)]
struct GSList {
    data: *mut c_void,
    next: *mut GSList,
}

/// What an ICE restart gave: new local credentials, and the local
/// candidates to announce with them.
#[derive(Debug, Clone)]
pub struct Restarted {
    pub ufrag: String,
    pub pwd: String,
    /// `candidate:...` lines (no `a=`), for the first media section.
    pub candidates: Vec<String>,
}

/// Restarts ICE on the webrtcbin's (bundled) stream: libnice forgets the
/// remote candidates and checks and makes new local credentials, which
/// webrtcbin 1.22 never does itself (its descriptions reuse the first
/// credentials, and it never calls nice_agent_restart_stream). The caller
/// writes the returned credentials and candidates into the next local
/// description.
pub fn restart(webrtcbin: &gst::Element) -> Result<Restarted, String> {
    let ice = webrtcbin.property::<glib::Object>("ice-agent");
    if ice.find_property("agent").is_none() {
        return Err("the ICE implementation has no libnice agent to restart".into());
    }
    let agent = ice.property::<glib::Object>("agent");
    let stream_id = bundled_stream_id(webrtcbin)
        .ok_or("no ICE stream to restart (no negotiated transceiver)")?;
    let raw = agent.as_ptr() as *mut c_void;
    // SAFETY: `agent` is a live NiceAgent for the whole block; the strings
    // and the candidate list libnice returns are ours to free, and are
    // freed here after being copied.
    unsafe {
        if nice_agent_restart_stream(raw, stream_id) == 0 {
            return Err(format!("libnice could not restart ICE stream {stream_id}"));
        }
        let (mut ufrag, mut pwd) = (std::ptr::null_mut(), std::ptr::null_mut());
        if nice_agent_get_local_credentials(raw, stream_id, &mut ufrag, &mut pwd) == 0 {
            return Err("libnice gave no local credentials after the restart".into());
        }
        let take = |text: *mut c_char| {
            let owned = CStr::from_ptr(text).to_string_lossy().into_owned();
            g_free(text as *mut c_void);
            owned
        };
        let (ufrag, pwd) = (take(ufrag), take(pwd));
        let mut candidates = Vec::new();
        let list = nice_agent_get_local_candidates(raw, stream_id, 1);
        let mut node = list;
        while !node.is_null() {
            let candidate = (*node).data;
            let sdp = nice_agent_generate_local_candidate_sdp(raw, candidate);
            if !sdp.is_null() {
                let line = take(sdp);
                candidates.push(line.trim_start_matches("a=").to_owned());
            }
            nice_candidate_free(candidate);
            node = (*node).next;
        }
        g_slist_free(list);
        Ok(Restarted {
            ufrag,
            pwd,
            candidates,
        })
    }
}

/// The libnice stream id behind the first transceiver's transport (with
/// max-bundle, every section's).
fn bundled_stream_id(webrtcbin: &gst::Element) -> Option<u32> {
    let transceiver = webrtcbin
        .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&0i32])?;
    let receiver = transceiver.property::<Option<gst_webrtc::WebRTCRTPReceiver>>("receiver")?;
    let dtls = receiver.property::<Option<gst_webrtc::WebRTCDTLSTransport>>("transport")?;
    let ice = dtls.property::<Option<glib::Object>>("transport")?;
    let stream = ice
        .find_property("stream")
        .and_then(|_| ice.property::<Option<glib::Object>>("stream"))?;
    stream
        .find_property("stream-id")
        .map(|_| stream.property::<u32>("stream-id"))
}

/// The addresses ICE should be restricted to: the user's choice when given,
/// otherwise 127.0.0.1 when the host has nothing but loopback, otherwise
/// none (libnice's own enumeration).
pub fn addresses_to_use(explicit: &[IpAddr]) -> Vec<IpAddr> {
    if !explicit.is_empty() {
        return explicit.to_vec();
    }
    if host_has_only_loopback() {
        return vec![IpAddr::from([127, 0, 0, 1])];
    }
    Vec::new()
}

pub fn host_has_only_loopback() -> bool {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().all(|interface| interface.is_loopback()),
        Err(_) => false,
    }
}

/// Parses `ice-addresses`: a comma- or space-separated list of IP addresses.
pub fn parse_address_list(text: &str) -> Result<Vec<IpAddr>, String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpAddr>()
                .map_err(|_| format!("\"{part}\" is not an IP address"))
        })
        .collect()
}

/// Configures the webrtcbin's ICE agent: no UPnP port mapping (it
/// multicasts discovery to the LAN and opens router ports nobody asked
/// for), and gathering restricted to `addresses` when any are given. Must
/// run before gathering starts (before the local description is set).
pub fn configure_agent(webrtcbin: &gst::Element, addresses: &[IpAddr]) -> Result<(), String> {
    let ice = webrtcbin.property::<glib::Object>("ice-agent");
    if ice.find_property("agent").is_none() {
        if addresses.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "the ICE implementation {} has no libnice agent; ice-addresses cannot be applied",
            ice.type_().name()
        ));
    }
    let agent = ice.property::<glib::Object>("agent");
    if agent.find_property("upnp").is_some() {
        agent.set_property("upnp", false);
    }
    for address in addresses {
        let text = CString::new(address.to_string()).expect("an IP address has no NUL");
        // SAFETY: `agent` is a live NiceAgent (held by `agent` for the whole
        // block); the NiceAddress is created, filled and freed here, and
        // libnice copies it in nice_agent_add_local_address().
        unsafe {
            let nice_address = nice_address_new();
            let parsed = nice_address_set_from_string(nice_address, text.as_ptr()) != 0;
            let added = parsed
                && nice_agent_add_local_address(agent.as_ptr() as *mut c_void, nice_address) != 0;
            nice_address_free(nice_address);
            if !added {
                return Err(format!("libnice refused local address {address}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_list_parses_and_names_bad_entries() {
        let parsed = parse_address_list("127.0.0.1, ::1 10.0.0.2").unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(parse_address_list("").unwrap().is_empty());
        assert!(
            parse_address_list("127.0.0.1,localhost")
                .unwrap_err()
                .contains("localhost")
        );
    }

    #[test]
    fn explicit_addresses_win() {
        let explicit = vec![IpAddr::from([10, 1, 2, 3])];
        assert_eq!(addresses_to_use(&explicit), explicit);
    }
}
