//! The reconciler's decision: from an agreement's record and the chain's clock, the one next step
//! that brings what runs and what the chain says together (see [`crate::reconciler`] for the diagram
//! and for the I/O that carries each step out). Pure, so every branch is tested without a chain.

use crate::domain::agreement::{Agreement, ChainStatus as C, ConferenceState as K, Model};

/// The one next step for an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Deploy,
    Activate,
    End,
    Undeploy,
    Settle,
    /// The customer signed a stop (EIP-712): submit it with the settlement, so stopping costs it no gas.
    StopAndSettle,
    /// Nothing to do until the chain or the clock moves.
    Wait,
}

impl Step {
    /// The operator call the step queues (as the outbox names it), if it is one of the chain's steps.
    /// A deploy may queue a decline, but only when nothing fits: it is always taken.
    pub fn call(self) -> Option<&'static str> {
        match self {
            Self::Activate => Some("activate"),
            Self::End => Some("end"),
            Self::Settle => Some("settle"),
            Self::StopAndSettle => Some("stopAndSettle"),
            Self::Deploy | Self::Undeploy | Self::Wait => None,
        }
    }
}

/// Decides the next step from the agreement's record and the chain's clock. Where a conference goes,
/// and whether one can go anywhere, is the deploy step's question (see `Reconciler::take`).
pub fn next_step(a: &Agreement, chain_now: u64, activation_window: u64) -> Step {
    let conference = a.conference_state;
    let up = matches!(conference, K::Running | K::Deploying);
    match a.chain_status {
        // A FlexiblePeriod start the window's end overtook: the escrow no longer activates it. One that
        // left the operator less than its activation window in the reserved window lapsed: the window
        // is settled as unused (its minimum charged). One owed an activation was the service's to serve:
        // the customer reclaims everything.
        C::Requested if a.model == Model::FlexiblePeriod && a.window_to.is_some_and(|to| chain_now >= to) => {
            let owed = a.requested_at.zip(a.window_to).is_some_and(|(at, to)| at + activation_window < to);
            if up {
                Step::Undeploy
            } else if owed {
                Step::Wait
            } else {
                Step::Settle
            }
        }
        C::Requested => {
            let activation_open = a.requested_at.is_some_and(|at| chain_now <= at + activation_window);
            match conference {
                K::Running if activation_open => Step::Activate,
                _ if activation_open => Step::Deploy,
                // Too late to activate: anyone may reclaim; no conference may stay.
                _ if up => Step::Undeploy,
                _ => Step::Wait,
            }
        }
        // The customer signed a stop of this conference that can still be submitted.
        C::Active if a.signed_stop_of_running().is_some_and(|stop| chain_now <= stop.deadline) => {
            if up {
                Step::Undeploy
            } else {
                Step::StopAndSettle
            }
        }
        C::Active => match conference {
            K::Running if a.ends_at.is_some_and(|ends| chain_now >= ends) => Step::End,
            K::Running => Step::Wait,
            // Active without a conference (it crashed or was lost): bring it back.
            K::Absent | K::Deploying | K::Removed => Step::Deploy,
        },
        C::Ended if up => Step::Undeploy,
        C::Ended => Step::Settle,
        C::Idle if a.model == Model::FlexiblePeriod => {
            let (from, to) = (a.window_from.unwrap_or(u64::MAX), a.window_to.unwrap_or(0));
            if chain_now >= to {
                // The window passed without a conference: remove the warm one, charge the minimum.
                if up { Step::Undeploy } else { Step::Settle }
            } else if chain_now >= from {
                // Ready in the window: a warm conference, so that a start is activated at once.
                if conference == K::Running { Step::Wait } else { Step::Deploy }
            } else if up {
                Step::Undeploy
            } else {
                Step::Wait
            }
        }
        C::Idle | C::Settled | C::Refunded if up => Step::Undeploy,
        C::Idle | C::Settled | C::Refunded => Step::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        agreement::{ChainStatus, ConferenceState},
        operator::OperatorCall,
        stop::SignedStop,
    };

    const WINDOW: u64 = 600;

    fn agreement(model: Model, chain_status: ChainStatus, conference_state: ConferenceState) -> Agreement {
        Agreement {
            id: 1,
            terms_id: 1,
            model,
            customer: "0xc".into(),
            token_id: 0,
            price: "1".into(),
            surcharge_bps: 0,
            deposit: "3600".into(),
            allowed_regions: 0b11,
            gdpr: false,
            duration: 3600,
            window_from: None,
            window_to: None,
            chain_status,
            session: 1,
            signed_at: 1000,
            requested_at: Some(1000),
            started_at: None,
            ends_at: None,
            region: None,
            ended_at: None,
            charged: "0".into(),
            availability_bps: None,
            refund: None,
            refund_deferred: None,
            refund_reason: None,
            conference_state,
            join_url: None,
            conference_region: None,
            deploy_count: 0,
            sign_tx: "0x".into(),
            activate_tx: None,
            end_tx: None,
            settle_tx: None,
            signed_stop: None,
            monitor: None,
            from_account: false,
        }
    }

    fn dynamic(chain_status: ChainStatus, conference_state: ConferenceState) -> Agreement {
        agreement(Model::DynamicPrice, chain_status, conference_state)
    }

    fn running_until(mut a: Agreement, ends_at: u64) -> Agreement {
        a.started_at = Some(1003);
        a.ends_at = Some(ends_at);
        a
    }

    #[test]
    fn walks_one_agreement_from_signature_to_settlement() {
        use {ChainStatus as C, ConferenceState as K};
        assert_eq!(next_step(&dynamic(C::Requested, K::Absent), 1000, WINDOW), Step::Deploy);
        assert_eq!(next_step(&dynamic(C::Requested, K::Deploying), 1001, WINDOW), Step::Deploy);
        assert_eq!(next_step(&dynamic(C::Requested, K::Running), 1002, WINDOW), Step::Activate);
        let active = running_until(dynamic(C::Active, K::Running), 4603);
        assert_eq!(next_step(&active, 2000, WINDOW), Step::Wait);
        assert_eq!(next_step(&dynamic(C::Ended, K::Running), 2000, WINDOW), Step::Undeploy);
        assert_eq!(next_step(&dynamic(C::Ended, K::Removed), 2000, WINDOW), Step::Settle);
        assert_eq!(next_step(&dynamic(C::Settled, K::Removed), 2000, WINDOW), Step::Wait);
    }

    #[test]
    fn names_each_chain_step_as_the_outbox_names_its_call() {
        let stop = SignedStop { started_at: 1, stopped_at: 2, deadline: 3, signature: Default::default() };
        let calls = [
            (Step::Activate, OperatorCall::Activate { agreement: 1, session: 1, requested_at: 1, region: 0 }),
            (Step::End, OperatorCall::End { agreement: 1, session: 1, started_at: 1 }),
            (
                Step::Settle,
                OperatorCall::Settle {
                    agreement: 1,
                    session: 1,
                    started_at: 1,
                    availability_bps: 1,
                    evidence: Default::default(),
                    report: Default::default(),
                },
            ),
            (
                Step::StopAndSettle,
                OperatorCall::StopAndSettle {
                    agreement: 1,
                    session: 1,
                    availability_bps: 1,
                    evidence: Default::default(),
                    report: Default::default(),
                    stop,
                },
            ),
        ];
        for (step, call) in calls {
            assert_eq!(step.call(), Some(call.name()));
        }
        for step in [Step::Deploy, Step::Undeploy, Step::Wait] {
            assert_eq!(step.call(), None);
        }
    }

    #[test]
    fn ends_a_conference_exactly_at_its_end_time() {
        use {ChainStatus as C, ConferenceState as K};
        let a = running_until(dynamic(C::Active, K::Running), 4600);
        assert_eq!(next_step(&a, 4599, WINDOW), Step::Wait);
        assert_eq!(next_step(&a, 4600, WINDOW), Step::End);
    }

    #[test]
    fn gives_up_activation_when_the_window_closed() {
        use {ChainStatus as C, ConferenceState as K};
        assert_eq!(next_step(&dynamic(C::Requested, K::Running), 1000 + WINDOW, WINDOW), Step::Activate);
        assert_eq!(next_step(&dynamic(C::Requested, K::Running), 1001 + WINDOW, WINDOW), Step::Undeploy);
        assert_eq!(next_step(&dynamic(C::Requested, K::Absent), 1001 + WINDOW, WINDOW), Step::Wait);
    }

    #[test]
    fn redeploys_a_lost_conference_and_removes_one_after_a_refund() {
        use {ChainStatus as C, ConferenceState as K};
        let active = running_until(dynamic(C::Active, K::Removed), 4603);
        assert_eq!(next_step(&active, 1500, WINDOW), Step::Deploy);
        assert_eq!(next_step(&dynamic(C::Refunded, K::Running), 1500, WINDOW), Step::Undeploy);
        assert_eq!(next_step(&dynamic(C::Refunded, K::Absent), 1500, WINDOW), Step::Wait);
    }

    #[test]
    fn submits_a_signed_stop_with_the_settlement_until_its_deadline() {
        use {ChainStatus as C, ConferenceState as K};
        let mut a = running_until(dynamic(C::Active, K::Running), 4603);
        let stop = SignedStop { started_at: 1003, stopped_at: 1500, deadline: 2000, signature: Default::default() };
        a.signed_stop = Some(stop.clone());
        assert_eq!(next_step(&a, 1600, WINDOW), Step::Undeploy, "the conference goes first");
        a.conference_state = K::Removed;
        assert_eq!(next_step(&a, 1600, WINDOW), Step::StopAndSettle);
        assert_eq!(next_step(&a, 2001, WINDOW), Step::Deploy, "too late to submit: it runs on");
        a.signed_stop = Some(SignedStop { started_at: 900, ..stop });
        assert_eq!(next_step(&a, 1600, WINDOW), Step::Deploy, "a stop for another conference is ignored");
    }

    #[test]
    fn runs_a_time_limited_session_and_waits_idle_between_sessions() {
        use {ChainStatus as C, ConferenceState as K};
        let idle = agreement(Model::TimeLimited, C::Idle, K::Removed);
        assert_eq!(next_step(&idle, 5000, WINDOW), Step::Wait);
        assert_eq!(next_step(&agreement(Model::TimeLimited, C::Idle, K::Running), 5000, WINDOW), Step::Undeploy);
        let mut requested = agreement(Model::TimeLimited, C::Requested, K::Removed);
        requested.requested_at = Some(5000);
        assert_eq!(next_step(&requested, 5001, WINDOW), Step::Deploy);
    }

    #[test]
    fn keeps_a_flexible_window_warm_and_settles_it_when_unused() {
        use {ChainStatus as C, ConferenceState as K};
        let mut a = agreement(Model::FlexiblePeriod, C::Idle, K::Absent);
        a.window_from = Some(2000);
        a.window_to = Some(3000);
        assert_eq!(next_step(&a, 1999, WINDOW), Step::Wait);
        assert_eq!(next_step(&a, 2000, WINDOW), Step::Deploy);
        a.conference_state = K::Running;
        assert_eq!(next_step(&a, 2500, WINDOW), Step::Wait);
        assert_eq!(next_step(&a, 3000, WINDOW), Step::Undeploy);
        a.conference_state = K::Removed;
        assert_eq!(next_step(&a, 3000, WINDOW), Step::Settle);
    }

    #[test]
    fn a_flexible_start_the_windows_end_overtook_is_settled_if_it_lapsed_and_left_to_reclaim_if_owed() {
        use {ChainStatus as C, ConferenceState as K};
        let mut a = agreement(Model::FlexiblePeriod, C::Requested, K::Running);
        a.window_from = Some(2000);
        a.window_to = Some(3000);
        // Started in the window's last second: less than the activation window left.
        a.requested_at = Some(2999);
        assert_eq!(next_step(&a, 2999, WINDOW), Step::Activate, "still activated while the window lasts");
        assert_eq!(next_step(&a, 3000, WINDOW), Step::Undeploy, "never activated at the window's end");
        a.conference_state = K::Removed;
        assert_eq!(next_step(&a, 3000, WINDOW), Step::Settle, "lapsed: the unused window's minimum is charged");
        // Started with the whole activation window left: owed an activation.
        a.requested_at = Some(2000);
        assert_eq!(next_step(&a, 3000, WINDOW), Step::Wait, "owed: the customer reclaims everything");
    }
}
