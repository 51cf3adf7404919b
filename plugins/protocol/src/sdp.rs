//! The little SDP that WHIP and WHEP, server and client, have to read and
//! write: checking that an offer is worth relaying, announcing its tracks
//! to the room, putting candidates into a description (WHIP and WHEP peers
//! need not trickle, so descriptions carry them), reading and writing
//! trickle-ice-sdpfrag bodies (RFC 8840) and swapping ICE credentials for
//! an ICE restart. Text in, text out: no SDP library, nothing kept.

use serde_json::Map;

use crate::{IceCandidate, StreamInfo};

/// One `m=` section of an offer, as far as the adapter cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: String,
    pub mid: Option<String>,
    /// Encoding name of the first payload type (`VP8`, `OPUS`...).
    pub codec: Option<String>,
    /// `a=recvonly` or `a=inactive`: the offerer sends nothing here.
    pub silent: bool,
    /// `a=sendonly` or `a=inactive`: the offerer receives nothing here.
    pub deaf: bool,
}

/// What an offer must do to be useful: send media (a WHIP publisher) or
/// receive it (a WHEP player).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sending,
    Receiving,
}

/// What is known about an accepted offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub sections: Vec<Section>,
}

impl Offer {
    /// The streams announced to the room: one per sending audio or video
    /// section, so a recorder knows how many tracks to wait for.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.sections
            .iter()
            .filter(|s| !s.silent && (s.kind == "audio" || s.kind == "video"))
            .map(|s| StreamInfo {
                kind: s.kind.clone(),
                codec: s.codec.clone(),
                label: s.mid.clone(),
                extra: Map::new(),
            })
            .collect()
    }

    /// Index of the section tagged `mid`, for candidates that name only it.
    pub fn index_of_mid(&self, mid: &str) -> Option<u32> {
        self.sections
            .iter()
            .position(|s| s.mid.as_deref() == Some(mid))
            .map(|i| i as u32)
    }
}

/// Checks that `text` is an SDP offer a WebRTC receiver can answer; the
/// error says what is missing, for a 400 a person can act on.
pub fn parse_offer(text: &str, direction: Direction) -> Result<Offer, String> {
    if text.trim().is_empty() {
        return Err("the body is empty; expected an SDP offer".into());
    }
    if !text.starts_with("v=0") {
        let start: String = text.chars().take(20).collect();
        return Err(format!(
            "the body is not SDP: it must begin with \"v=0\", it begins with {start:?}"
        ));
    }
    let mut sections: Vec<Section> = Vec::new();
    let mut session_ufrag = false;
    let mut section_ufrag = false;
    let mut fingerprint = false;
    for line in text.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            let kind = media.split(' ').next().unwrap_or_default().to_owned();
            sections.push(Section {
                kind,
                mid: None,
                codec: None,
                silent: false,
                deaf: false,
            });
            continue;
        }
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        if attribute.starts_with("ice-ufrag:") {
            match sections.is_empty() {
                true => session_ufrag = true,
                false => section_ufrag = true,
            }
        } else if attribute.starts_with("fingerprint:") {
            fingerprint = true;
        } else if let Some(section) = sections.last_mut() {
            if let Some(mid) = attribute.strip_prefix("mid:") {
                section.mid = Some(mid.trim().to_owned());
            } else if attribute == "recvonly" || attribute == "inactive" {
                section.silent = true;
                section.deaf |= attribute == "inactive";
            } else if attribute == "sendonly" {
                section.deaf = true;
            } else if let Some(rtpmap) = attribute.strip_prefix("rtpmap:")
                && section.codec.is_none()
            {
                // "96 VP8/90000": the first payload type listed is preferred.
                section.codec = rtpmap
                    .split_once(' ')
                    .and_then(|(_, encoding)| encoding.split('/').next())
                    .map(str::to_ascii_uppercase);
            }
        }
    }
    let media = |s: &&Section| s.kind == "audio" || s.kind == "video";
    match direction {
        Direction::Sending if !sections.iter().filter(media).any(|s| !s.silent) => {
            return Err(
                "the offer sends no media: no m=audio or m=video section without recvonly/inactive"
                    .into(),
            );
        }
        Direction::Receiving if !sections.iter().filter(media).any(|s| !s.deaf) => {
            return Err(
                "the offer receives no media: no m=audio or m=video section without sendonly/inactive"
                    .into(),
            );
        }
        _ => {}
    }
    if !session_ufrag && !section_ufrag {
        return Err("the offer has no a=ice-ufrag: it is not a WebRTC (ICE) offer".into());
    }
    if !fingerprint {
        return Err("the offer has no a=fingerprint: WebRTC media must be DTLS-SRTP".into());
    }
    if text.lines().any(|l| l.trim_end() == "a=setup:passive") {
        // An answer (or an offer that insists on being the DTLS server)
        // cannot be what a WHIP client posts.
        return Err("a=setup:passive: the body looks like an answer, not an offer".into());
    }
    Ok(Offer { sections })
}

/// The answer with the receiver's `candidates` written into their
/// sections (and `a=end-of-candidates` when gathering finished), so a
/// client that does not trickle can still connect.
pub fn answer_with_candidates(answer: &str, candidates: &[IceCandidate], complete: bool) -> String {
    let newline = if answer.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let lines: Vec<&str> = answer.lines().collect();
    let mut sections: Vec<Option<String>> = Vec::new();
    for line in &lines {
        if line.starts_with("m=") {
            sections.push(None);
        } else if let Some(mid) = line.strip_prefix("a=mid:")
            && let Some(last) = sections.last_mut()
        {
            *last = Some(mid.trim().to_owned());
        }
    }
    let section_of = |candidate: &IceCandidate| -> usize {
        let by_mid = candidate
            .sdp_mid
            .as_deref()
            .and_then(|mid| sections.iter().position(|s| s.as_deref() == Some(mid)));
        let index = by_mid.or(candidate.sdp_m_line_index.map(|i| i as usize));
        // With BUNDLE every section shares the first one's transport.
        index.filter(|i| *i < sections.len()).unwrap_or(0)
    };
    let mut per_section: Vec<Vec<&str>> = vec![Vec::new(); sections.len().max(1)];
    for candidate in candidates {
        let text = candidate.candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        if !text.is_empty() {
            per_section[section_of(candidate)].push(text);
        }
    }

    let mut out = String::with_capacity(answer.len() + candidates.len() * 100);
    let mut section: Option<usize> = None;
    let flush = |out: &mut String, section: Option<usize>| {
        if let Some(index) = section {
            for candidate in &per_section[index] {
                out.push_str("a=");
                out.push_str(candidate);
                out.push_str(newline);
            }
            if complete {
                out.push_str("a=end-of-candidates");
                out.push_str(newline);
            }
        }
    };
    for line in &lines {
        if line.starts_with("m=") {
            flush(&mut out, section);
            section = Some(section.map_or(0, |i| i + 1));
        }
        if line.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push_str(newline);
    }
    flush(&mut out, section);
    out
}

/// What a PATCH body (`application/trickle-ice-sdpfrag`, RFC 8840) holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fragment {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// Candidates with the mid of the section they followed.
    pub candidates: Vec<(Option<String>, String)>,
    pub end_of_candidates: bool,
}

pub fn parse_fragment(text: &str) -> Result<Fragment, String> {
    let mut fragment = Fragment::default();
    let mut mid: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if let Some(value) = line.strip_prefix("a=mid:") {
            mid = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("a=ice-ufrag:") {
            fragment.ufrag = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("a=ice-pwd:") {
            fragment.pwd = Some(value.trim().to_owned());
        } else if line.starts_with("a=candidate:") {
            let candidate = line.strip_prefix("a=").expect("checked").to_owned();
            fragment.candidates.push((mid.clone(), candidate));
        } else if line == "a=end-of-candidates" {
            fragment.end_of_candidates = true;
        } else if !(line.starts_with("a=") || line.starts_with("m=")) {
            return Err(format!(
                "not an SDP fragment: line {line:?} is neither a= nor m="
            ));
        }
    }
    if fragment.candidates.is_empty() && !fragment.end_of_candidates && fragment.ufrag.is_none() {
        return Err("the fragment has no a=candidate and no a=end-of-candidates line".into());
    }
    Ok(fragment)
}

/// The `a=ice-ufrag` of a description, to tell a trickle from an ICE restart.
pub fn ufrag(sdp: &str) -> Option<&str> {
    attribute(sdp, "ice-ufrag")
}

/// The `a=ice-pwd` of a description.
pub fn pwd(sdp: &str) -> Option<&str> {
    attribute(sdp, "ice-pwd")
}

/// The first value of `a=<name>:` anywhere in `sdp`.
pub fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines().find_map(|line| {
        line.trim_end()
            .strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')
            .map(str::trim)
    })
}

/// `sdp` with every `a=ice-ufrag` and `a=ice-pwd` set to new credentials
/// and its candidates dropped: the description of an ICE restart, where
/// the old candidates belong to the old credentials.
pub fn with_ice_credentials(sdp: &str, ufrag: &str, pwd: &str) -> String {
    let newline = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else {
            out.push_str(line);
        }
        out.push_str(newline);
    }
    out
}

/// An `application/trickle-ice-sdpfrag` body (RFC 8840): the credentials
/// (for an ICE restart's answer), then the candidates under the first
/// section's mid (with BUNDLE every section shares its transport), then
/// `a=end-of-candidates` when gathering is over.
pub fn fragment(
    credentials: Option<(&str, &str)>,
    description: &str,
    candidates: &[IceCandidate],
    complete: bool,
) -> String {
    let mut out = String::new();
    if let Some((ufrag, pwd)) = credentials {
        out.push_str(&format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"));
    }
    let first_media = description.lines().find(|l| l.starts_with("m="));
    let mid = attribute_in_first_section(description, "mid");
    if let Some(media) = first_media {
        // The section line itself only situates the candidates; RFC 8840
        // lets it stand with a dummy port and format.
        let kind = media
            .trim_start_matches("m=")
            .split(' ')
            .next()
            .unwrap_or("audio");
        out.push_str(&format!("m={kind} 9 UDP/TLS/RTP/SAVPF 0\r\n"));
        if let Some(mid) = mid {
            out.push_str(&format!("a=mid:{mid}\r\n"));
        }
    }
    for candidate in candidates {
        let text = candidate.candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        if !text.is_empty() {
            out.push_str("a=");
            out.push_str(text);
            out.push_str("\r\n");
        }
    }
    if complete {
        out.push_str("a=end-of-candidates\r\n");
    }
    out
}

/// `a=<name>` of the first `m=` section.
fn attribute_in_first_section<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    let start = sdp.find("m=")?;
    let section = &sdp[start..];
    let end = section[2..].find("\nm=").map_or(section.len(), |i| i + 2);
    attribute(&section[..end], name)
}

/// The candidates of `sdp` with the index and mid of their section: what a
/// peer that does not trickle put into its description.
pub fn candidates(sdp: &str) -> Vec<IceCandidate> {
    let mut found = Vec::new();
    let mut index: Option<u32> = None;
    let mut mid: Option<String> = None;
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            index = Some(index.map_or(0, |i| i + 1));
            mid = None;
        } else if let Some(value) = line.strip_prefix("a=mid:") {
            mid = Some(value.trim().to_owned());
        } else if let Some(candidate) = line.strip_prefix("a=")
            && candidate.starts_with("candidate:")
        {
            found.push(IceCandidate {
                candidate: candidate.to_owned(),
                sdp_m_line_index: Some(index.unwrap_or(0)),
                sdp_mid: mid.clone(),
            });
        }
    }
    found
}
