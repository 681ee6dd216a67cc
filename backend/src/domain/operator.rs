//! What the operator does on-chain about an agreement ([`OperatorCall`], queued in the outbox and sent
//! by the settler), and the transactions it signs for it ([`SignedTx`]).

use alloy::primitives::{B256, Bytes};

use crate::domain::{agreement::ChainStatus, stop::SignedStop};

/// How often a failed call is queued again while the reconciler still finds it due; then it stays failed
/// (cancelled), and the agreement waits for the customer's reclaim or anyone's overdue settlement.
pub const MAX_RETRIES: u64 = 3;

/// A call the operator makes on an agreement. Each names the conference it is about by the time the
/// chain records in the agreement's `startedAt` while the call is due (the request time before
/// activation, the start time after it, 0 for a FlexiblePeriod window that was never used), so a call
/// left over from an earlier session of the same agreement is never sent into a later one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorCall {
    Activate {
        agreement: u64,
        session: u64,
        requested_at: u64,
        region: u8,
    },
    Decline {
        agreement: u64,
        session: u64,
        requested_at: u64,
    },
    End {
        agreement: u64,
        session: u64,
        started_at: u64,
    },
    /// Settles with the measured availability, the commitment to its evidence, and the monitor's signed
    /// report of them (empty when the terms name no monitor: the operator's own figure).
    Settle {
        agreement: u64,
        session: u64,
        started_at: u64,
        availability_bps: u16,
        evidence: B256,
        report: Bytes,
    },
    /// Ends a running conference at the time the customer signed (EIP-712 `Stop`) and settles it.
    StopAndSettle {
        agreement: u64,
        session: u64,
        availability_bps: u16,
        evidence: B256,
        report: Bytes,
        stop: SignedStop,
    },
}

impl OperatorCall {
    pub fn agreement(&self) -> u64 {
        match *self {
            Self::Activate { agreement, .. }
            | Self::Decline { agreement, .. }
            | Self::End { agreement, .. }
            | Self::Settle { agreement, .. }
            | Self::StopAndSettle { agreement, .. } => agreement,
        }
    }

    pub fn session(&self) -> u64 {
        match *self {
            Self::Activate { session, .. }
            | Self::Decline { session, .. }
            | Self::End { session, .. }
            | Self::Settle { session, .. }
            | Self::StopAndSettle { session, .. } => session,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Activate { .. } => "activate",
            Self::Decline { .. } => "decline",
            Self::End { .. } => "end",
            Self::Settle { .. } => "settle",
            Self::StopAndSettle { .. } => "stopAndSettle",
        }
    }

    /// Whether this call is still the next step, given the agreement's on-chain status (None: the
    /// contract has no such agreement) and `startedAt`. Otherwise it has already happened, or been
    /// overtaken (the customer cancelled, someone else ended or settled it), and counts as done.
    pub fn is_due(&self, status: Option<ChainStatus>, started_at: u64) -> bool {
        let Some(status) = status else { return false };
        match *self {
            Self::StopAndSettle { ref stop, .. } => status == ChainStatus::Active && started_at == stop.started_at,
            Self::Activate { requested_at, .. } | Self::Decline { requested_at, .. } => {
                status == ChainStatus::Requested && started_at == requested_at
            }
            Self::End { started_at: expected, .. } => status == ChainStatus::Active && started_at == expected,
            Self::Settle { started_at: 0, .. } => status == ChainStatus::Idle && started_at == 0,
            // An ended conference, or a FlexiblePeriod start that lapsed at the window's end (still
            // Requested, named by its request time).
            Self::Settle { started_at: expected, .. } => {
                matches!(status, ChainStatus::Ended | ChainStatus::Requested) && started_at == expected
            }
        }
    }
}

/// A transaction signed by the operator, ready to broadcast (again, if need be).
#[derive(Debug, Clone)]
pub struct SignedTx {
    pub nonce: u64,
    pub hash: B256,
    pub raw: Vec<u8>,
    pub fees: Fees,
}

/// EIP-1559 fees of one transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    pub max_fee: u128,
    pub priority_fee: u128,
}

impl Fees {
    /// Fees that replace a transaction paying `self`: each raised by 1/8 (nodes ask for at least 10%),
    /// and at least `current`.
    pub fn bumped(self, current: Fees) -> Fees {
        let raise = |fee: u128| fee + fee.div_ceil(8).max(1);
        let priority_fee = raise(self.priority_fee).max(current.priority_fee);
        Fees { max_fee: raise(self.max_fee).max(current.max_fee).max(priority_fee), priority_fee }
    }
}
