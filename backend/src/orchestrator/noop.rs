//! The no-op orchestrator, for benchmarks: no conference is run. A deploy answers at once with
//! `noop://conference/<id>` in the configured region, so that a benchmark measures the backend's own
//! loop (watcher, reconciler, settler, monitor) without the cost of starting rooms. The agreements it
//! deployed are kept in memory: probe answers true while one is deployed, list returns them, and a
//! restart forgets them (nothing was running), so the reconciler deploys them again.

use std::{collections::BTreeSet, sync::Mutex};

use crate::{
    Result,
    domain::{
        conference::{Conference, Deployed},
        placement::{self, NoFit},
    },
};

pub struct NoopOrchestrator {
    /// The one region its conferences "run" in (a bit number of the contract's region masks).
    region: u8,
    deployed: Mutex<BTreeSet<u64>>,
}

impl NoopOrchestrator {
    pub fn new(region: u8) -> Self {
        Self { region, deployed: Mutex::default() }
    }

    /// The URL a deployed agreement's conference is named by (nothing answers at it).
    pub fn join_url(agreement: u64) -> String {
        format!("noop://conference/{agreement}")
    }

    /// Fits any conference that allows its region, as the local orchestrator does.
    pub fn fit(&self, conference: &Conference) -> Result<(), NoFit> {
        if placement::region_allowed(conference.allowed_regions, self.region) { Ok(()) } else { Err(NoFit::Excluded) }
    }

    /// Records the agreement as deployed; `fresh` is false when it already was (adopted, not doubled).
    pub fn deploy(&self, conference: &Conference) -> Deployed {
        let fresh = self.set().insert(conference.agreement);
        Deployed { join_url: Self::join_url(conference.agreement), fresh, region: self.region }
    }

    /// Forgets the agreement's conference; idempotent.
    pub fn remove(&self, agreement: u64) {
        self.set().remove(&agreement);
    }

    /// Whether the agreement is deployed.
    pub fn probe(&self, agreement: u64) -> bool {
        self.set().contains(&agreement)
    }

    /// The deployed agreements, in ascending order.
    pub fn list(&self) -> Vec<u64> {
        self.set().iter().copied().collect()
    }

    fn set(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        // The set is consistent after every operation: a panic elsewhere cannot leave it half-changed.
        self.deployed.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conference(agreement: u64, allowed_regions: u32) -> Conference {
        Conference {
            agreement,
            customer: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8".into(),
            allowed_regions,
            gdpr: false,
            participant_regions: Vec::new(),
            participants: None,
            stream_kbps: 1_000,
            warm_start: false,
        }
    }

    #[test]
    fn deploys_at_once_in_its_region_and_adopts_a_second_deploy() {
        let noop = NoopOrchestrator::new(2);
        let first = noop.deploy(&conference(7, 0b100));
        assert_eq!(first, Deployed { join_url: "noop://conference/7".into(), fresh: true, region: 2 });
        let again = noop.deploy(&conference(7, 0b100));
        assert_eq!(again, Deployed { join_url: "noop://conference/7".into(), fresh: false, region: 2 });
        assert_eq!(noop.list(), vec![7]);
    }

    #[test]
    fn probe_and_list_answer_for_what_is_deployed_until_it_is_removed() {
        let noop = NoopOrchestrator::new(0);
        assert!(!noop.probe(3));
        assert!(noop.list().is_empty());
        for id in [5, 3, 9] {
            noop.deploy(&conference(id, 0b1));
        }
        assert!(noop.probe(3) && noop.probe(5) && noop.probe(9));
        assert_eq!(noop.list(), vec![3, 5, 9]);
        noop.remove(5);
        noop.remove(5);
        noop.remove(42);
        assert!(!noop.probe(5));
        assert!(noop.probe(3));
        assert_eq!(noop.list(), vec![3, 9]);
    }

    #[test]
    fn fits_only_conferences_that_allow_its_region() {
        let noop = NoopOrchestrator::new(1);
        assert_eq!(noop.fit(&conference(1, 0b010)), Ok(()));
        assert_eq!(noop.fit(&conference(1, 0b101)), Err(NoFit::Excluded));
    }
}
