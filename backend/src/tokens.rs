//! How participants prove to a conference that they may join it. The customer, signed in with
//! Ethereum (`http::session`), registers its participants; the API stores them
//! ([`crate::store::Store::register_participants`]) and issues a join token ([`JoinTokens`]) to the
//! customer (as moderator) and to each registered participant, signed in likewise. The Kubernetes
//! orchestrator configures its Jitsi Meet with the same app id and secret, so that prosody accepts
//! exactly these tokens ([`JoinClaims`]), and each pod with its own host as the only audience, so that
//! a token opens its own conference's pod and no other. The local orchestrator's Janus servers check theirs
//! themselves: Janus signed tokens ([`crate::orchestrator::janus::signed_token`]) under a secret per
//! conference derived from the one the backend keeps in the conferences' folder
//! ([`crate::orchestrator::local::join_secret`]), valid [`TOKEN_TTL_SECS`] and renewed by the page.

use alloy::primitives::Address;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    config::JitsiArgs,
    domain::conference::{lowercase, room_name, short_address},
    orchestrator::janus::{TOKEN_TTL_SECS, signed_token, token_secret},
};

/// The claims of a Jitsi Meet join token (prosody's `token` authentication, HS256; lib-jitsi-meet
/// `doc/tokens.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The conference's host (its join URL's): its pod accepts only that audience
    /// (`JWT_ACCEPTED_AUDIENCES`, prosody's `asap_accepted_audiences`).
    pub aud: String,
    /// The app id (`JITSI_APP_ID`), prosody's `app_id`.
    pub iss: String,
    /// The Jitsi domain (tenant) the token is for; `*` for any.
    pub sub: String,
    /// [`room_name`] of the agreement.
    pub room: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub context: JoinContext,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinContext {
    pub user: JoinUser,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinUser {
    /// The wallet address, lowercase hex with 0x.
    pub id: String,
    /// The address shortened for display, e.g. `0x7099…79c8`.
    pub name: String,
    /// The customer moderates its conference; participants do not.
    pub moderator: bool,
}

/// Which kind of conference join tokens are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// A Janus server of the local orchestrator: the page opens its WebSocket API (the join URL) and
    /// sends the token with every request.
    Local,
    /// Jitsi Meet (the Kubernetes orchestrator): the join URL carries the token as `jwt`.
    Jitsi,
}

/// A token issued, with when it stops working (unix seconds).
#[derive(Clone)]
pub struct JoinToken {
    pub token: String,
    pub expires_at: u64,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token is a credential: it is never printed, not even by accident in a log line.
        f.debug_struct("JoinToken").field("token", &"[redacted]").field("expires_at", &self.expires_at).finish()
    }
}

/// Issues join tokens for the conferences of this service: HS256 with the app secret Jitsi Meet's
/// prosody is configured with, or with the local rooms' secret.
#[derive(Clone)]
pub struct JoinTokens {
    app_id: String,
    subject: String,
    ttl_secs: u64,
    key: EncodingKey,
    /// The local conferences' join secret (their Janus token secrets derive from it).
    local_secret: Vec<u8>,
    room: RoomKind,
}

impl std::fmt::Debug for JoinTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinTokens")
            .field("app_id", &self.app_id)
            .field("subject", &self.subject)
            .field("ttl_secs", &self.ttl_secs)
            .field("key", &"[redacted]")
            .field("room", &self.room)
            .finish()
    }
}

impl JoinTokens {
    /// An issuer of Jitsi Meet tokens signing with `secret`.
    pub fn new(app_id: impl Into<String>, secret: &[u8], subject: impl Into<String>, ttl_secs: u64) -> Result<Self> {
        if secret.is_empty() {
            return Err(Error::Config("JITSI_APP_SECRET is empty".into()));
        }
        Ok(Self {
            app_id: app_id.into(),
            subject: subject.into(),
            ttl_secs,
            key: EncodingKey::from_secret(secret),
            local_secret: Vec::new(),
            room: RoomKind::Jitsi,
        })
    }

    /// An issuer of the local Janus servers' signed tokens, valid [`TOKEN_TTL_SECS`], each under its
    /// conference's secret derived from the conferences' folder's join `secret`.
    pub fn local(secret: &[u8]) -> Result<Self> {
        if secret.is_empty() {
            return Err(Error::Config("the local conferences' join secret is empty".into()));
        }
        Ok(Self {
            app_id: String::new(),
            subject: String::new(),
            ttl_secs: TOKEN_TTL_SECS,
            key: EncodingKey::from_secret(secret),
            local_secret: secret.to_vec(),
            room: RoomKind::Local,
        })
    }

    /// The issuer of Jitsi Meet tokens the settings describe: JITSI_APP_SECRET must be set (the same one
    /// the Kubernetes orchestrator's prosody is given).
    pub fn from_args(args: &JitsiArgs) -> Result<Self> {
        let secret = args
            .jitsi_app_secret
            .as_ref()
            .ok_or_else(|| Error::Config("JITSI_APP_SECRET is not set: Jitsi Meet's join tokens need it".into()))?;
        Self::new(args.jitsi_app_id.clone(), secret.0.as_bytes(), args.jitsi_domain.clone(), args.jitsi_token_ttl_secs)
    }

    /// Which conferences the tokens are for.
    pub fn room(&self) -> RoomKind {
        self.room
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// The claims of a token for `address` to join agreement `agreement`'s conference on `host`, valid
    /// from `now` (unix seconds) for the configured time to live. `moderator` (the customer) makes
    /// its holder the room's owner (prosody's `token_affiliation`); anyone else is a member.
    pub fn claims(&self, agreement: u64, host: &str, address: Address, moderator: bool, now: u64) -> JoinClaims {
        JoinClaims {
            aud: host.to_owned(),
            iss: self.app_id.clone(),
            sub: self.subject.clone(),
            room: room_name(agreement),
            iat: now,
            nbf: now,
            exp: now.saturating_add(self.ttl_secs),
            context: JoinContext { user: JoinUser { id: lowercase(address), name: short_address(address), moderator } },
        }
    }

    /// A signed token for `address` to join the conference at `base` (its join URL without a token):
    /// Jitsi Meet's ([`JoinTokens::claims`], for the URL's host) or a local Janus server's
    /// ([`signed_token`], naming the conference's room and the address).
    pub fn issue(&self, agreement: u64, base: &str, address: Address, moderator: bool, now: u64) -> Result<JoinToken> {
        let header = Header::new(Algorithm::HS256);
        let (token, expires_at) = match self.room {
            RoomKind::Jitsi => {
                let host = url_host(base)
                    .ok_or_else(|| Error::Config(format!("join token: the conference URL {base:?} names no host")))?;
                let claims = self.claims(agreement, &host, address, moderator, now);
                (jsonwebtoken::encode(&header, &claims, &self.key), claims.exp)
            }
            RoomKind::Local => {
                let expires_at = now.saturating_add(self.ttl_secs);
                let secret = token_secret(&self.local_secret, agreement);
                (Ok(signed_token(&secret, expires_at, &lowercase(address))), expires_at)
            }
        };
        let token = token.map_err(|e| Error::Config(format!("join token: {e}")))?;
        Ok(JoinToken { token, expires_at })
    }

    /// The URL a token's holder joins at, from the conference's `base` URL: Jitsi Meet's with the token
    /// as `jwt`; a local Janus server's as it is (its WebSocket API; the token goes with each request).
    pub fn join_url(&self, base: &str, token: &str) -> String {
        match self.room {
            RoomKind::Jitsi => join_url(base, token),
            RoomKind::Local => base.to_owned(),
        }
    }
}

/// The host of an `https://host[:port]/...` URL, lowercase as DNS and prosody's audience compare it.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if host.starts_with('[') { host } else { host.split(':').next()? };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The conference's join URL with the token as Jitsi Meet reads it (`jwt` query parameter).
pub fn join_url(base: &str, token: &str) -> String {
    let (base, fragment) = match base.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (base, None),
    };
    let separator = match base.rsplit_once('?') {
        Some((_, "")) => "",
        Some((_, query)) if query.ends_with('&') => "",
        Some(_) => "&",
        None => "?",
    };
    let mut url = format!("{base}{separator}jwt={token}");
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::orchestrator::jitsi_pod::{self, JitsiSettings, MediaAddress, Owner, PodPlan, Sizing};
    use jsonwebtoken::{DecodingKey, Validation};

    const SECRET: &[u8] = b"a test secret, never a real one";
    const CUSTOMER: Address = alloy::primitives::address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
    const CONFERENCE_7: &str = "https://conference-7.meet-eu.example.org/conference-7";

    fn decode(token: &str, audience: &str) -> JoinClaims {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&["conference"]);
        validation.validate_nbf = true;
        jsonwebtoken::decode::<JoinClaims>(token, &DecodingKey::from_secret(SECRET), &validation).unwrap().claims
    }

    #[test]
    fn a_token_carries_exactly_jitsis_claims() {
        let tokens = JoinTokens::new("conference", SECRET, "*", 3600).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let issued = tokens.issue(7, CONFERENCE_7, CUSTOMER, true, now).unwrap();
        assert_eq!(issued.expires_at, now + 3600);
        let claims = decode(&issued.token, "conference-7.meet-eu.example.org");
        assert_eq!(
            claims,
            JoinClaims {
                aud: "conference-7.meet-eu.example.org".into(),
                iss: "conference".into(),
                sub: "*".into(),
                room: "conference-7".into(),
                iat: now,
                nbf: now,
                exp: now + 3600,
                context: JoinContext {
                    user: JoinUser {
                        id: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8".into(),
                        name: "0x7099…79c8".into(),
                        moderator: true,
                    }
                },
            }
        );
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        // The raw JSON, as prosody reads it: `context.user.moderator` a JSON boolean (what
        // token_affiliation turns into the owner affiliation).
        let json = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&issued.token).unwrap().claims;
        assert_eq!(json["context"]["user"]["moderator"], serde_json::Value::Bool(true));
        assert_eq!(json.as_object().unwrap().len(), 8, "{json}");
    }

    #[test]
    fn a_participant_is_no_moderator_and_another_secret_does_not_verify() {
        let tokens = JoinTokens::new("conference", SECRET, "meet.example.org", 60).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let participant = alloy::primitives::address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
        let issued = tokens.issue(1, "https://Conference-1.Meet.example.org:443/conference-1", participant, false, now);
        let issued = issued.unwrap();
        let claims = decode(&issued.token, "conference-1.meet.example.org");
        assert!(!claims.context.user.moderator);
        let json = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&issued.token).unwrap().claims;
        assert_eq!(json["context"]["user"]["moderator"], serde_json::Value::Bool(false), "member, not owner");
        assert_eq!(claims.sub, "meet.example.org");
        assert_eq!(claims.exp, now + 60);
        assert_eq!(claims.context.user.id, "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc");

        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&["conference-1.meet.example.org"]);
        let other = DecodingKey::from_secret(b"another secret");
        assert!(jsonwebtoken::decode::<JoinClaims>(&issued.token, &other, &validation).is_err());
        assert!(!format!("{issued:?}").contains(&issued.token), "Debug never shows the token");
        assert!(!format!("{tokens:?}").contains("test secret"));
        let no_host = tokens.issue(1, "conference-1", participant, false, now).unwrap_err();
        assert!(no_host.to_string().contains("names no host"), "{no_host}");
    }

    /// What prosody checks of a token with the settings `pod`'s prosody container was given
    /// (jitsi-meet `resources/prosody-plugins/token/util.lib.lua`: the signature with `app_secret`,
    /// `iss` among `asap_accepted_issuers`, `aud` among `asap_accepted_audiences`, a `room` claim;
    /// then `verify_room`: the room joined is the `room` claim), given the Secret's value.
    fn prosody_accepts(
        pod: &k8s_openapi::api::core::v1::Pod,
        secret: &[u8],
        token: &str,
        room: &str,
    ) -> Result<(), String> {
        let prosody = pod.spec.as_ref().unwrap().containers.iter().find(|c| c.name == "prosody").unwrap();
        let env = |name: &str| -> Vec<String> {
            let var = prosody.env.as_ref().unwrap().iter().find(|e| e.name == name);
            var.and_then(|e| e.value.clone()).map(|v| v.split(',').map(str::to_owned).collect()).unwrap_or_default()
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&env("JWT_ACCEPTED_ISSUERS"));
        validation.set_audience(&env("JWT_ACCEPTED_AUDIENCES"));
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<JoinClaims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|e| e.to_string())?
            .claims;
        if claims.room != room {
            return Err(format!("room {} is not {room}", claims.room));
        }
        Ok(())
    }

    #[test]
    fn a_token_for_one_conference_is_refused_by_another_conferences_pod() {
        let owner = Owner { chain_id: 31337, contract: "0xabc".into() };
        let jitsi = JitsiSettings::default();
        // A pod as the orchestrator makes it, on its own host `<name>.meet-eu.example.org`.
        let pod_of = |name: &str, agreement: Option<u64>| {
            jitsi_pod::pod(&PodPlan {
                host: format!("{name}.meet-eu.example.org"),
                name: name.to_owned(),
                agreement,
                owner: &owner,
                sizing: Sizing { participants: 3, stream_kbps: 1_500 },
                jitsi: &jitsi,
                app_id: "conference",
                internal_passwords: ("a".into(), "b".into()),
                grace_period_secs: 30,
                annotations: BTreeMap::new(),
                media: MediaAddress { addresses: vec!["203.0.113.7".parse().unwrap()], port: 10_000 },
                turn: None,
            })
        };
        let (seven, eight) = (pod_of("conference-7", Some(7)), pod_of("conference-8", Some(8)));
        let tokens = JoinTokens::new("conference", SECRET, "*", 3600).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let for_seven = tokens.issue(7, CONFERENCE_7, CUSTOMER, true, now).unwrap().token;
        assert_eq!(prosody_accepts(&seven, SECRET, &for_seven, "conference-7"), Ok(()));
        // Conference 8's pod: same secret, same issuer, but its own audience.
        let refused = prosody_accepts(&eight, SECRET, &for_seven, "conference-7").unwrap_err();
        assert!(refused.contains("InvalidAudience"), "{refused}");
        let for_eight = tokens.issue(8, "https://conference-8.meet-eu.example.org/conference-8", CUSTOMER, false, now);
        assert_eq!(prosody_accepts(&eight, SECRET, &for_eight.unwrap().token, "conference-8"), Ok(()));
        // A warm pod is bound to its own host, whichever agreement it is handed to.
        let warm = pod_of("conference-warm-0a1b2c3d", None);
        assert!(prosody_accepts(&warm, SECRET, &for_seven, "conference-7").is_err());
        let handed =
            tokens.issue(7, "https://conference-warm-0a1b2c3d.meet-eu.example.org/conference-7", CUSTOMER, true, now);
        assert_eq!(prosody_accepts(&warm, SECRET, &handed.unwrap().token, "conference-7"), Ok(()));
    }

    #[test]
    fn the_token_goes_into_the_join_url_as_jwt() {
        assert_eq!(join_url("http://127.0.0.1:9/", "t"), "http://127.0.0.1:9/?jwt=t");
        assert_eq!(
            join_url("https://meet.example/conference-1?lang=en", "t"),
            "https://meet.example/conference-1?lang=en&jwt=t"
        );
        assert_eq!(join_url("https://meet.example/r?", "t"), "https://meet.example/r?jwt=t");
        assert_eq!(join_url("https://meet.example/r#config.x=1", "t"), "https://meet.example/r?jwt=t#config.x=1");
    }
}
