//! Which local addresses ICE gathers on.
//!
//! libnice skips loopback interfaces when it enumerates addresses itself, so
//! on a host whose only interface is `lo` (a container, a test namespace) a
//! webrtcbin gathers no candidates at all. GStreamer 1.22 has no property
//! for this; libnice's `nice_agent_add_local_address()` does it, and once
//! any address is added libnice gathers on those only, which also lets users
//! pin ICE to chosen interfaces on multi-homed servers.

use std::ffi::{CString, c_char, c_int, c_void};
use std::net::IpAddr;

use gst::glib;
use gst::prelude::*;

unsafe extern "C" {
    fn nice_address_new() -> *mut c_void;
    fn nice_address_free(addr: *mut c_void);
    fn nice_address_set_from_string(addr: *mut c_void, text: *const c_char) -> c_int;
    fn nice_agent_add_local_address(agent: *mut c_void, addr: *mut c_void) -> c_int;
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
