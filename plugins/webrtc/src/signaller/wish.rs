//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) clients: peersink
//! publishes to a WHIP endpoint (`whip+https://...`), peersrc plays a WHEP
//! endpoint (`whep+https://...`). One session each, offered by the element.
//!
//! The offer is POSTed once ICE gathering ends (or after
//! `signaller::gathering-timeout`) with its candidates, since many servers
//! take no trickle; later candidates go by PATCH when the server takes them
//! (a 405/422/501 stops trickling). A second offer from the element in the
//! same session is an ICE restart: PATCH with the new credentials and
//! `If-Match: "*"`, the server's sdpfrag turned back into an answer. A WHEP
//! server may answer the POST with 406 and an offer of its own: the session
//! is then started again, answering it, and the answer is PATCHed. Stopping
//! DELETEs the session.

use peer_signalling::protocol::sdp;
use peer_signalling::protocol::{IceCandidate, SdpKind, SessionDescription};
use reqwest::StatusCode;
use tokio::time::Instant;
use url::Url;

use super::http::{Endpoint, Posted};
use super::{
    CommandSource, EventSink, Negotiation, Role, SignallerCommand, SignallerConfig, SignallerError,
    SignallerEvent,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whip,
    Whep,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Whip => "WHIP",
            Kind::Whep => "WHEP",
        }
    }
}

pub fn start_whip(
    config: SignallerConfig,
    commands: CommandSource,
    events: EventSink,
) -> Result<(), SignallerError> {
    start(Kind::Whip, config, commands, events)
}

pub fn start_whep(
    config: SignallerConfig,
    commands: CommandSource,
    events: EventSink,
) -> Result<(), SignallerError> {
    start(Kind::Whep, config, commands, events)
}

fn start(
    kind: Kind,
    config: SignallerConfig,
    commands: CommandSource,
    events: EventSink,
) -> Result<(), SignallerError> {
    let uri = config.uri.clone().unwrap_or_default();
    let wrong_element = match (kind, &config.role) {
        (Kind::Whip, Role::Consumer { .. }) => {
            Some("peersrc plays a WHEP endpoint (whep+http://); WHIP is for peersink")
        }
        (Kind::Whep, Role::Producer { .. }) => {
            Some("peersink publishes to a WHIP endpoint (whip+http://); WHEP is for peersrc")
        }
        _ => None,
    };
    if let Some(reason) = wrong_element {
        return Err(SignallerError::BadUri {
            uri: super::http::redact(&uri),
            reason: reason.into(),
        });
    }
    // signaller::token first, then the element's token, then ?token=.
    let mut protocol = config.protocol.clone();
    if protocol.token.is_none() {
        protocol.token = config.token.clone();
    }
    let endpoint = Endpoint::from_uri(&uri, &protocol, config.tls_ca_pem.as_deref())?;
    let client = Client {
        kind,
        endpoint,
        events,
        config,
        session: String::new(),
        generation: 0,
        offer: None,
        candidates: Vec::new(),
        gathered: false,
        gather_deadline: None,
        resource: None,
        etag: None,
        trickle: true,
        answer: None,
        counter_offer: false,
        sent: None,
    };
    tokio::spawn(client.run(commands));
    Ok(())
}

struct Client {
    kind: Kind,
    endpoint: Endpoint,
    events: EventSink,
    config: SignallerConfig,
    /// The element's id for the current session.
    session: String,
    generation: u32,
    /// Our description waiting for gathering to end before it is sent.
    offer: Option<SessionDescription>,
    /// Candidates not sent yet (before the POST, or waiting for a PATCH).
    candidates: Vec<IceCandidate>,
    gathered: bool,
    gather_deadline: Option<Instant>,
    resource: Option<Url>,
    etag: Option<String>,
    /// False once the server refused a trickle PATCH.
    trickle: bool,
    /// The remote answer, for turning an ICE restart's sdpfrag back into one.
    answer: Option<String>,
    /// WHEP: our description answers the server's 406 offer.
    counter_offer: bool,
    /// Our latest description as sent.
    sent: Option<String>,
}

impl Client {
    fn emit(&self, event: SignallerEvent) {
        let _ = self.events.send(event);
    }

    fn fail(&self, error: SignallerError) {
        self.emit(SignallerEvent::Error(error));
    }

    fn new_session(&mut self, negotiation: Negotiation, ice_servers: Vec<String>) {
        self.generation += 1;
        self.session = format!("{}-{}", self.kind.name().to_lowercase(), self.generation);
        self.offer = None;
        self.candidates.clear();
        self.gathered = false;
        self.gather_deadline = None;
        let peer = self.endpoint.url.host_str().unwrap_or("server").to_owned();
        self.emit(SignallerEvent::SessionStarted {
            session: self.session.clone(),
            peer,
            negotiation,
            ice_servers,
            data_channels: None,
        });
    }

    async fn run(mut self, mut commands: CommandSource) {
        let ice_servers = self.endpoint.discover_ice_servers().await;
        tracing::debug!(kind = self.kind.name(), ?ice_servers, "OPTIONS answered");
        self.emit(SignallerEvent::Ready {
            peer_id: self.kind.name().to_lowercase(),
            room: super::http::redact(self.endpoint.url.as_str()),
            watch_url: None,
            embedded: false,
        });
        self.new_session(Negotiation::Offer, ice_servers);
        loop {
            let deadline = self.gather_deadline;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => {
                        if !self.on_command(command).await {
                            break;
                        }
                    }
                    // The element is stopping.
                    None => break,
                },
                _ = sleep_until_optional(deadline) => {
                    self.gather_deadline = None;
                    if !self.send_description().await {
                        break;
                    }
                }
            }
        }
        if let Some(resource) = self.resource.take() {
            let _ = self.endpoint.delete(&resource).await;
        }
        self.config.status.lock().unwrap().resource_url = None;
    }

    /// False when the client is done.
    async fn on_command(&mut self, command: SignallerCommand) -> bool {
        match command {
            SignallerCommand::Description {
                session,
                description,
            } if session == self.session => {
                tracing::debug!(session = %self.session, "our description, gathering");
                self.offer = Some(description);
                self.gathered = false;
                self.gather_deadline =
                    Some(Instant::now() + self.config.protocol.gathering_timeout);
                true
            }
            SignallerCommand::Candidate { session, candidate } if session == self.session => {
                match candidate {
                    Some(candidate) => self.candidates.push(candidate),
                    None => self.gathered = true,
                }
                if self.offer.is_some() && self.gather_deadline.is_some() {
                    if self.gathered {
                        self.gather_deadline = None;
                        return self.send_description().await;
                    }
                    return true;
                }
                self.trickle_candidates().await;
                true
            }
            SignallerCommand::EndSession { session, .. } if session == self.session => false,
            SignallerCommand::Message { .. } => {
                self.emit(SignallerEvent::Warning(SignallerError::Protocol(format!(
                    "{} carries no application messages; use a data channel",
                    self.kind.name()
                ))));
                true
            }
            // Of a session replaced since.
            _ => true,
        }
    }

    /// Sends our description with the candidates gathered so far. False
    /// when the session cannot go on.
    async fn send_description(&mut self) -> bool {
        let Some(description) = self.offer.take() else {
            return true;
        };
        let candidates = std::mem::take(&mut self.candidates);
        let text = sdp::answer_with_candidates(&description.sdp, &candidates, self.gathered);
        self.sent = Some(description.sdp.clone());
        let result = match (description.kind, &self.resource) {
            // WHEP counter-offer: our answer goes by PATCH.
            (SdpKind::Answer, Some(resource)) if self.counter_offer => {
                let resource = resource.clone();
                self.send_counter_answer(&resource, text).await
            }
            (SdpKind::Offer, Some(resource)) => {
                let resource = resource.clone();
                self.restart_ice(&resource, &description.sdp, &candidates)
                    .await
            }
            (SdpKind::Offer, None) => self.post(text).await,
            (SdpKind::Answer, _) => Err(SignallerError::Protocol(format!(
                "{}: an answer with no offer from the server to answer",
                self.kind.name()
            ))),
        };
        match result {
            Ok(()) => true,
            Err(error) => {
                self.fail(error);
                false
            }
        }
    }

    async fn post(&mut self, offer: String) -> Result<(), SignallerError> {
        tracing::debug!(kind = self.kind.name(), session = %self.session, "posting the offer");
        let Posted {
            status,
            resource,
            etag,
            body,
            ice_servers,
        } = self.endpoint.post_offer(&offer).await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                let resource = resource.ok_or_else(|| {
                    SignallerError::Protocol(format!(
                        "{} answered {status} without a Location",
                        super::http::redact(self.endpoint.url.as_str())
                    ))
                })?;
                if !ice_servers.is_empty() {
                    tracing::debug!(?ice_servers, "ICE servers announced after the offer");
                }
                self.established(resource, etag);
                self.answer = Some(body.clone());
                self.emit(SignallerEvent::RemoteDescription {
                    session: self.session.clone(),
                    description: SessionDescription {
                        kind: SdpKind::Answer,
                        sdp: body,
                    },
                });
                Ok(())
            }
            // WHEP -03: the server offers instead; answer in a new session.
            StatusCode::NOT_ACCEPTABLE
                if self.kind == Kind::Whep && body.trim_start().starts_with("v=0") =>
            {
                let resource = resource.ok_or_else(|| {
                    SignallerError::Protocol("a 406 counter-offer without a Location".into())
                })?;
                self.established(resource, etag);
                self.counter_offer = true;
                self.new_session(
                    Negotiation::Answer(SessionDescription {
                        kind: SdpKind::Offer,
                        sdp: body,
                    }),
                    ice_servers,
                );
                Ok(())
            }
            status => Err(self.endpoint.refused(status, &body)),
        }
    }

    fn established(&mut self, resource: Url, etag: Option<String>) {
        self.config.status.lock().unwrap().resource_url = Some(resource.to_string());
        self.resource = Some(resource);
        self.etag = etag;
    }

    async fn send_counter_answer(
        &mut self,
        resource: &Url,
        answer: String,
    ) -> Result<(), SignallerError> {
        self.counter_offer = false;
        let patched = self
            .endpoint
            .patch(resource, "application/sdp", answer, self.etag.as_deref())
            .await?;
        if !patched.status.is_success() {
            return Err(self.endpoint.refused(patched.status, &patched.body));
        }
        if patched.etag.is_some() {
            self.etag = patched.etag;
        }
        Ok(())
    }

    /// Candidates gathered after the POST, in one PATCH.
    async fn trickle_candidates(&mut self) {
        let Some(resource) = self.resource.clone() else {
            return;
        };
        if !self.trickle || (self.candidates.is_empty() && !self.gathered) {
            self.candidates.clear();
            return;
        }
        let candidates = std::mem::take(&mut self.candidates);
        let Some(offer) = self.last_local_offer() else {
            return;
        };
        let credentials = sdp::ufrag(&offer).zip(sdp::pwd(&offer));
        let body = sdp::fragment(credentials, &offer, &candidates, self.gathered);
        match self
            .endpoint
            .patch(
                &resource,
                "application/trickle-ice-sdpfrag",
                body,
                Some(self.etag.as_deref().unwrap_or("*")),
            )
            .await
        {
            Ok(patched) if patched.status.is_success() => {}
            Ok(patched) => {
                // 405/422/501: the server takes no trickle (its answer
                // came after our gathering anyway); stop asking.
                tracing::debug!(status = %patched.status, "trickle refused; not trickling");
                self.trickle = false;
            }
            Err(err) => tracing::debug!(%err, "trickle PATCH failed"),
        }
    }

    /// Our latest description as sent, for the credentials and the
    /// section a fragment repeats.
    fn last_local_offer(&self) -> Option<String> {
        self.sent.clone()
    }

    /// An ICE restart: the new credentials and candidates by PATCH, the
    /// server's credentials and candidates back as a new answer.
    async fn restart_ice(
        &mut self,
        resource: &Url,
        offer: &str,
        candidates: &[IceCandidate],
    ) -> Result<(), SignallerError> {
        let credentials = sdp::ufrag(offer).zip(sdp::pwd(offer));
        let body = sdp::fragment(credentials, offer, candidates, self.gathered);
        let patched = self
            .endpoint
            .patch(
                resource,
                "application/trickle-ice-sdpfrag",
                body,
                Some("\"*\""),
            )
            .await?;
        if patched.status != StatusCode::OK {
            return Err(SignallerError::Protocol(format!(
                "the {} server refused an ICE restart ({}): {}",
                self.kind.name(),
                patched.status,
                patched.body.trim()
            )));
        }
        let fragment = sdp::parse_fragment(&patched.body)
            .map_err(|err| SignallerError::Protocol(format!("ICE restart answer: {err}")))?;
        let (Some(ufrag), Some(pwd), Some(previous)) = (fragment.ufrag, fragment.pwd, &self.answer)
        else {
            return Err(SignallerError::Protocol(
                "the ICE restart answer has no new credentials".into(),
            ));
        };
        self.etag = patched.etag.or(self.etag.take());
        let remote: Vec<IceCandidate> = fragment
            .candidates
            .into_iter()
            .map(|(mid, candidate)| IceCandidate {
                candidate,
                sdp_m_line_index: None,
                sdp_mid: mid,
            })
            .collect();
        let answer = sdp::answer_with_candidates(
            &sdp::with_ice_credentials(previous, &ufrag, &pwd),
            &remote,
            fragment.end_of_candidates,
        );
        self.answer = Some(answer.clone());
        self.emit(SignallerEvent::RemoteDescription {
            session: self.session.clone(),
            description: SessionDescription {
                kind: SdpKind::Answer,
                sdp: answer,
            },
        });
        Ok(())
    }
}

async fn sleep_until_optional(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
