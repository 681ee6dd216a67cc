//! A conference as the reconciler asks an orchestrator for it ([`Conference`]) and as the orchestrator
//! reports it back ([`Deployed`]); what the customer registered for it ([`ConferenceSettings`]: the
//! quality and who may join); and the names both sides give it.

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The most participants one registration may name (the customer comes on top). The contract has no
/// limit; this one keeps a registration's signature, its row count and a conference's size bounded.
pub const MAX_PARTICIPANTS: usize = 100;

/// The Jitsi room of an agreement's conference: the `room` claim of its join tokens, and the room name
/// the orchestrator gives Jitsi Meet.
pub fn room_name(agreement: u64) -> String {
    format!("conference-{agreement}")
}

/// The video quality the customer chose for its conference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// 360p.
    Sd,
    /// 720p.
    #[default]
    Hd,
    /// 1080p.
    FullHd,
}

impl Quality {
    /// The quality's number: 0 sd, 1 hd, 2 fullhd.
    pub fn index(self) -> u8 {
        match self {
            Self::Sd => 0,
            Self::Hd => 1,
            Self::FullHd => 2,
        }
    }

    pub fn from_index(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Sd,
            1 => Self::Hd,
            2 => Self::FullHd,
            _ => return None,
        })
    }

    /// The video height in pixels (Jitsi's `resolution` and `constraints.video.height.ideal`).
    pub fn height(self) -> u16 {
        match self {
            Self::Sd => 360,
            Self::Hd => 720,
            Self::FullHd => 1080,
        }
    }

    /// The bitrate of one video stream at this height, in kbit/s (what the conference pod is sized by:
    /// see `orchestrator::jitsi_pod`).
    pub fn stream_kbps(self) -> u64 {
        match self {
            Self::Sd => 500,
            Self::Hd => 1_500,
            Self::FullHd => 3_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sd => "sd",
            Self::Hd => "hd",
            Self::FullHd => "fullhd",
        }
    }
}

impl std::str::FromStr for Quality {
    type Err = Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "sd" => Ok(Self::Sd),
            "hd" => Ok(Self::Hd),
            "fullhd" => Ok(Self::FullHd),
            other => Err(Error::Config(format!("unknown Quality {other:?}"))),
        }
    }
}

/// An agreement's registration as the store keeps it: what the orchestrator needs to place and size
/// the conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceSettings {
    pub quality: Quality,
    /// Each participant's address and the region it joins from (a bit number of the contract's region
    /// masks), in the order the customer listed them. The customer is not among them unless it named
    /// itself.
    pub participants: Vec<(Address, u8)>,
    /// Unix seconds (the service's wall clock) the registration was made at; a later one replaces it.
    pub issued_at: u64,
}

/// What the reconciler asks for: one agreement's conference, with what placement and sizing need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub agreement: u64,
    pub customer: String,
    /// Bit i set: the conference may run in region i.
    pub allowed_regions: u32,
    pub gdpr: bool,
    /// The registered participants' regions (empty when none were registered).
    pub participant_regions: Vec<u8>,
    /// Everyone who may join, the customer included; None when the customer registered nobody.
    pub participants: Option<u64>,
    /// The bitrate of one video stream at the quality the customer chose.
    pub stream_kbps: u64,
    /// A FlexiblePeriod window: a warm pod, if one is ready, makes its start fast.
    pub warm_start: bool,
}

/// Who may be in a running conference now (the customer and the participants registered, lowercase
/// addresses) and the bitrate of one video stream at the quality registered: what the monitor holds the
/// conference to at each probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub admitted: std::collections::BTreeSet<String>,
    pub stream_kbps: u64,
}

/// A conference the orchestrator runs for an agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub join_url: String,
    /// False when an existing conference for the agreement was found and adopted.
    pub fresh: bool,
    /// Where it runs: the region the activation reports on-chain.
    pub region: u8,
}

/// `address` as lowercase hex with 0x: how the store keeps participants and tokens name users.
pub fn lowercase(address: Address) -> String {
    alloy::hex::encode_prefixed(address)
}

/// `0x7099…79c8`: enough of an address to tell participants apart on screen.
pub fn short_address(address: Address) -> String {
    let hex = lowercase(address);
    format!("{}…{}", &hex[..6], &hex[hex.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_names_and_indices() {
        for (quality, name, index, height) in
            [(Quality::Sd, "sd", 0, 360), (Quality::Hd, "hd", 1, 720), (Quality::FullHd, "fullhd", 2, 1080)]
        {
            assert_eq!(serde_json::to_value(quality).unwrap(), name);
            assert_eq!(name.parse::<Quality>().unwrap(), quality);
            assert_eq!((quality.index(), Quality::from_index(index), quality.height()), (index, Some(quality), height));
        }
        assert_eq!(Quality::default(), Quality::Hd);
        assert_eq!(Quality::from_index(3), None);
        assert_eq!(room_name(42), "conference-42");
    }
}
