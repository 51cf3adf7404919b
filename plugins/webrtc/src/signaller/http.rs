//! What the WHIP and WHEP clients share: the endpoint from the uri, the
//! Bearer token, POST with redirects followed by hand (the token must go
//! along, RFC 9725 §4.5), PATCH with `If-Match`, DELETE, and ICE servers
//! read from `Link` headers.

use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use super::{ProtocolSettings, SignallerError};

/// Redirects followed before giving up (a loop, most likely).
const MAX_REDIRECTS: usize = 5;

/// A WHIP or WHEP endpoint and how to talk to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Url,
    token: Option<String>,
    client: reqwest::Client,
}

/// What a POST of an offer got back.
#[derive(Debug)]
pub struct Posted {
    pub status: StatusCode,
    /// The session's resource, resolved against the URL that answered.
    pub resource: Option<Url>,
    pub etag: Option<String>,
    pub body: String,
    pub ice_servers: Vec<String>,
}

/// What a PATCH got back.
#[derive(Debug)]
pub struct Patched {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub body: String,
}

impl Endpoint {
    /// `whip+https://host/path?token=T` → `https://host/path`, token T.
    /// Other query parameters stay: they may mean something to the server.
    pub fn from_uri(
        uri: &str,
        settings: &ProtocolSettings,
        tls_ca_pem: Option<&[u8]>,
    ) -> Result<Endpoint, SignallerError> {
        let bad = |reason: String| SignallerError::BadUri {
            uri: redact(uri),
            reason,
        };
        let (_, rest) = uri
            .split_once('+')
            .ok_or_else(|| bad("expected whip+http(s):// or whep+http(s)://".into()))?;
        let mut url = Url::parse(rest).map_err(|err| bad(err.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(
                "expected an http or https URL with a host after the +".into()
            ));
        }
        let mut token = None;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, value)| {
                if key == "token" {
                    token = Some(value.to_string());
                    false
                } else {
                    true
                }
            })
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let mut builder = reqwest::Client::builder()
            // Followed by hand, so the token goes along.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .no_proxy()
            .use_preconfigured_tls(
                peer_signalling::client::tls_client_config(tls_ca_pem)
                    .map_err(SignallerError::Connect)?,
            );
        builder = builder.user_agent(concat!("gst-peer/", env!("CARGO_PKG_VERSION")));
        let client = builder
            .build()
            .map_err(|err| SignallerError::Connect(format!("cannot make an HTTP client: {err}")))?;
        Ok(Endpoint {
            url,
            token: settings.token.clone().or(token),
            client,
        })
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// ICE servers the endpoint announces on OPTIONS (RFC 9725 §4.6); none
    /// when it does not answer that way.
    pub async fn discover_ice_servers(&self) -> Vec<String> {
        match self.request(Method::OPTIONS, self.url.clone()).send().await {
            Ok(response) => ice_servers(response.headers()),
            Err(_) => Vec::new(),
        }
    }

    /// POSTs `sdp`, following 307/308 redirects.
    pub async fn post_offer(&self, sdp: &str) -> Result<Posted, SignallerError> {
        let mut url = self.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .request(Method::POST, url.clone())
                .header(header::CONTENT_TYPE, "application/sdp")
                .body(sdp.to_owned())
                .send()
                .await
                .map_err(|err| self.unreachable(&url, err))?;
            let status = response.status();
            if matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            ) {
                url = location(&url, response.headers()).ok_or_else(|| SignallerError::Http {
                    endpoint: redact(url.as_str()),
                    status: status.as_u16(),
                    body: "a redirect without a Location".into(),
                })?;
                continue;
            }
            let headers = response.headers().clone();
            let body = response.text().await.unwrap_or_default();
            return Ok(Posted {
                status,
                resource: location(&url, &headers),
                etag: header_text(&headers, header::ETAG),
                body,
                ice_servers: ice_servers(&headers),
            });
        }
        Err(SignallerError::Http {
            endpoint: redact(self.url.as_str()),
            status: 310,
            body: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    pub async fn patch(
        &self,
        resource: &Url,
        content_type: &str,
        body: String,
        if_match: Option<&str>,
    ) -> Result<Patched, SignallerError> {
        let mut request = self
            .request(Method::PATCH, resource.clone())
            .header(header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(etag) = if_match {
            request = request.header(header::IF_MATCH, etag);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.unreachable(resource, err))?;
        let status = response.status();
        let etag = header_text(response.headers(), header::ETAG);
        let body = response.text().await.unwrap_or_default();
        Ok(Patched { status, etag, body })
    }

    /// Ends the session; the server's answer matters little by then.
    pub async fn delete(&self, resource: &Url) -> Result<StatusCode, SignallerError> {
        self.request(Method::DELETE, resource.clone())
            .send()
            .await
            .map(|response| response.status())
            .map_err(|err| self.unreachable(resource, err))
    }

    fn unreachable(&self, url: &Url, err: reqwest::Error) -> SignallerError {
        let what = if err.is_timeout() {
            "timed out".to_owned()
        } else {
            // The innermost cause says why (refused, no route, TLS).
            let mut source: &dyn std::error::Error = &err;
            while let Some(next) = source.source() {
                source = next;
            }
            source.to_string()
        };
        SignallerError::Connect(format!("cannot reach {}: {what}", redact(url.as_str())))
    }

    /// The error for an unexpected status, with the server's own words.
    pub fn refused(&self, status: StatusCode, body: &str) -> SignallerError {
        SignallerError::Http {
            endpoint: redact(self.url.as_str()),
            status: status.as_u16(),
            body: first_line(body),
        }
    }
}

/// `uri` without credentials, for messages: a token in the query or a
/// password in the authority must not end up in logs.
pub fn redact(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            if url.query_pairs().any(|(key, _)| key == "token") {
                let kept: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "token" {
                            "…".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(kept);
            }
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

fn first_line(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or("(no body)");
    line.chars().take(300).collect()
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_owned)
}

/// `Location`, resolved against the URL that sent it (RFC 9110 §10.2.2).
fn location(base: &Url, headers: &HeaderMap) -> Option<Url> {
    let value = header_text(headers, header::LOCATION)?;
    base.join(&value).ok()
}

/// ICE servers from `Link: <uri>; rel="ice-server"; username=...;
/// credential=...` headers, in webrtcbin's form (`stun://host:port`,
/// `turn://user:pass@host:port?transport=udp`). Malformed ones are skipped.
pub fn ice_servers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(split_links)
        .filter_map(|link| parse_ice_server(&link))
        .collect()
}

/// Several links may share one header, separated by commas outside `<>`
/// and quotes.
fn split_links(value: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut current = String::new();
    let (mut in_angle, mut in_quote) = (false, false);
    for c in value.chars() {
        match c {
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            '"' if !in_angle => in_quote = !in_quote,
            ',' if !in_angle && !in_quote => {
                links.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    links.push(current);
    links
}

fn parse_ice_server(link: &str) -> Option<String> {
    let link = link.trim();
    let target = link.strip_prefix('<')?;
    let (target, params) = target.split_once('>')?;
    let mut rel = None;
    let mut username = None;
    let mut credential = None;
    for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "rel" => rel = Some(value),
            "username" => username = Some(value),
            "credential" => credential = Some(value),
            _ => {}
        }
    }
    if rel.as_deref() != Some("ice-server") {
        return None;
    }
    let (scheme, rest) = target.split_once(':')?;
    let rest = rest.trim_start_matches("//");
    match scheme.to_ascii_lowercase().as_str() {
        "stun" | "stuns" => Some(format!("stun://{rest}")),
        scheme @ ("turn" | "turns") => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            match (username, credential) {
                (Some(user), Some(pass)) => {
                    Some(format!("{scheme}://{}:{}@{rest}", enc(&user), enc(&pass)))
                }
                _ => Some(format!("{scheme}://{rest}")),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ProtocolSettings {
        ProtocolSettings {
            timeout: Duration::from_secs(5),
            ..ProtocolSettings::default()
        }
    }

    #[test]
    fn the_uri_gives_the_url_and_the_token() {
        let endpoint = Endpoint::from_uri(
            "whip+https://sfu.example/whip/live?token=SECRET&app=x",
            &settings(),
            None,
        )
        .unwrap();
        assert_eq!(endpoint.url.as_str(), "https://sfu.example/whip/live?app=x");
        assert_eq!(endpoint.token.as_deref(), Some("SECRET"));
        let endpoint =
            Endpoint::from_uri("whep+http://127.0.0.1:8889/live/whep", &settings(), None).unwrap();
        assert_eq!(endpoint.url.as_str(), "http://127.0.0.1:8889/live/whep");
        assert_eq!(endpoint.token, None);
        let with_property = ProtocolSettings {
            token: Some("P".into()),
            ..settings()
        };
        let endpoint =
            Endpoint::from_uri("whip+http://h/whip?token=Q", &with_property, None).unwrap();
        assert_eq!(endpoint.token.as_deref(), Some("P"), "the property wins");
        let err = Endpoint::from_uri("whip+ftp://h/x", &settings(), None).unwrap_err();
        assert!(err.to_string().contains("http or https"), "{err}");
    }

    #[test]
    fn tokens_never_reach_messages() {
        assert_eq!(
            redact("https://user:pw@h/whip?token=SECRET&a=1"),
            "https://user@h/whip?token=%E2%80%A6&a=1"
        );
    }

    #[test]
    fn ice_servers_come_from_link_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::LINK,
            HeaderValue::from_static("<stun:stun.example.net:3478>; rel=\"ice-server\""),
        );
        headers.append(
            header::LINK,
            HeaderValue::from_static(
                "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"u s\"; credential=\"p@ss\"; credential-type=\"password\", <https://x/ext>; rel=\"urn:ietf:params:whep:ext:x\"",
            ),
        );
        // gst-plugins-rs 0.15 writes `credential:"p"`: skipped, not misread.
        headers.append(
            header::LINK,
            HeaderValue::from_static(
                "<turn:bad:1>; rel=\"ice-server\"; username=\"u\"; credential:\"p\"",
            ),
        );
        assert_eq!(
            ice_servers(&headers),
            [
                "stun://stun.example.net:3478",
                "turn://u+s:p%40ss@turn.example.net:3478?transport=udp"
            ]
        );
    }
}
