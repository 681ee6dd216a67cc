//! Placement, the paper's Decision Maker: which cluster runs a conference. Three rules, in order:
//!
//! 1. **Constraints, without exception.** The cluster's region must be one the agreement allows, and
//!    a GDPR agreement only goes to a GDPR-compliant cluster. No latency or load outweighs them.
//! 2. **Expected latency.** The mean, over the conference's participants, of the latency from each
//!    participant's region to the cluster's region, from a [`LatencyTable`] (configured, and
//!    refreshed by whoever measures it). Participants of unknown region add the same to every cluster.
//! 3. **Load.** Among clusters equally close, the one with the most free capacity, so conferences
//!    spread out instead of filling one cluster first. A cluster without room for the conference is
//!    never chosen.
//!
//! It is pure and synchronous: the orchestrator passes in the clusters as it last saw them.

use serde::Deserialize;

/// A cluster as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// A bit number of the contract's region masks.
    pub region: u8,
    pub gdpr: bool,
    /// CPU the cluster still has for conferences, in millicores.
    pub free_millicores: u64,
}

/// What a conference needs from a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Bit i set: the conference may run in region i.
    pub allowed_regions: u32,
    pub gdpr: bool,
    /// The region of each participant whose region is known.
    pub participant_regions: Vec<u8>,
    pub millicores: u64,
}

/// Why no cluster was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFit {
    /// No configured cluster meets the constraints: it will never fit.
    Excluded,
    /// Clusters meet the constraints, but none has room now.
    Full,
}

/// Expected one-way latency in milliseconds, `ms[from participant region][to cluster region]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LatencyTable {
    pub ms: Vec<Vec<u32>>,
    /// For a pair of regions the table does not list.
    #[serde(default = "LatencyTable::default_unknown_ms")]
    pub unknown_ms: u32,
}

impl Default for LatencyTable {
    fn default() -> Self {
        Self { ms: Vec::new(), unknown_ms: Self::default_unknown_ms() }
    }
}

impl LatencyTable {
    fn default_unknown_ms() -> u32 {
        250
    }

    pub fn between(&self, from: u8, to: u8) -> u32 {
        self.ms.get(from as usize).and_then(|row| row.get(to as usize)).copied().unwrap_or(self.unknown_ms)
    }

    /// The participants' summed latency to `region`: the mean times their number, which ranks
    /// clusters the same for one conference and needs no division.
    pub fn total_to(&self, participants: &[u8], region: u8) -> u64 {
        participants.iter().map(|&from| u64::from(self.between(from, region))).sum()
    }
}

/// Whether a cluster meets the agreement's constraints (rule 1).
pub fn admits(candidate: &Candidate, need: &Need) -> bool {
    region_allowed(need.allowed_regions, candidate.region) && (candidate.gdpr || !need.gdpr)
}

/// Whether a region mask (bit i set: region i) allows `region`; masks have 32 bits.
pub fn region_allowed(allowed_regions: u32, region: u8) -> bool {
    region < 32 && allowed_regions & (1 << region) != 0
}

/// The index of the cluster to run the conference on.
pub fn place(need: &Need, clusters: &[Candidate], latency: &LatencyTable) -> Result<usize, NoFit> {
    let mut admitted = clusters.iter().enumerate().filter(|(_, c)| admits(c, need)).peekable();
    if admitted.peek().is_none() {
        return Err(NoFit::Excluded);
    }
    admitted
        .filter(|(_, c)| c.free_millicores >= need.millicores)
        // The lowest latency, then the most free capacity, then the first listed (a stable choice).
        .min_by_key(|&(index, c)| {
            (latency.total_to(&need.participant_regions, c.region), std::cmp::Reverse(c.free_millicores), index)
        })
        .map(|(index, _)| index)
        .ok_or(NoFit::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EU: u8 = 0;
    const US: u8 = 1;
    const ASIA: u8 = 2;

    fn latency() -> LatencyTable {
        LatencyTable { ms: vec![vec![10, 90, 180], vec![90, 10, 150], vec![180, 150, 10]], unknown_ms: 250 }
    }

    fn cluster(region: u8, gdpr: bool, free_millicores: u64) -> Candidate {
        Candidate { region, gdpr, free_millicores }
    }

    fn need(allowed_regions: u32, gdpr: bool, participant_regions: Vec<u8>) -> Need {
        Need { allowed_regions, gdpr, participant_regions, millicores: 1_000 }
    }

    const ANY: u32 = u32::MAX;

    #[test]
    fn picks_the_cluster_closest_to_the_participants() {
        let clusters = [cluster(EU, true, 8_000), cluster(US, false, 8_000), cluster(ASIA, false, 8_000)];
        assert_eq!(place(&need(ANY, false, vec![US, US, EU]), &clusters, &latency()), Ok(1));
        assert_eq!(place(&need(ANY, false, vec![EU, EU, US]), &clusters, &latency()), Ok(0));
        assert_eq!(place(&need(ANY, false, vec![ASIA]), &clusters, &latency()), Ok(2));
    }

    #[test]
    fn constraints_exclude_a_closer_emptier_cluster() {
        // Everyone is in the US and the US cluster is empty, but the customer allowed the EU only.
        let clusters = [cluster(US, true, 64_000), cluster(EU, true, 2_000)];
        assert_eq!(place(&need(1 << EU, false, vec![US, US]), &clusters, &latency()), Ok(1));
        // GDPR: only a compliant cluster, however close the others are.
        let clusters = [cluster(US, false, 64_000), cluster(ASIA, true, 2_000)];
        assert_eq!(place(&need(ANY, true, vec![US]), &clusters, &latency()), Ok(1));
    }

    #[test]
    fn balances_load_between_equally_close_clusters() {
        let clusters = [cluster(EU, true, 2_000), cluster(EU, true, 6_000), cluster(EU, true, 4_000)];
        assert_eq!(place(&need(ANY, false, vec![EU]), &clusters, &latency()), Ok(1));
        // With no participant regions known, every cluster is equally close: load decides.
        let clusters = [cluster(EU, true, 2_000), cluster(ASIA, true, 6_000)];
        assert_eq!(place(&need(ANY, false, vec![]), &clusters, &latency()), Ok(1));
    }

    #[test]
    fn tells_never_from_not_now() {
        let clusters = [cluster(US, false, 8_000)];
        assert_eq!(place(&need(1 << EU, false, vec![]), &clusters, &latency()), Err(NoFit::Excluded));
        assert_eq!(place(&need(ANY, true, vec![]), &clusters, &latency()), Err(NoFit::Excluded));
        assert_eq!(place(&need(ANY, false, vec![]), &[], &latency()), Err(NoFit::Excluded));
        let full = [cluster(EU, true, 999), cluster(US, true, 500)];
        assert_eq!(place(&need(ANY, false, vec![EU]), &full, &latency()), Err(NoFit::Full));
        // A full close cluster yields to a farther one with room.
        let clusters = [cluster(EU, true, 999), cluster(US, true, 1_000)];
        assert_eq!(place(&need(ANY, false, vec![EU]), &clusters, &latency()), Ok(1));
    }

    #[test]
    fn an_unlisted_pair_of_regions_costs_the_unknown_latency() {
        let table = latency();
        assert_eq!(table.between(EU, 7), 250);
        assert_eq!(table.between(9, EU), 250);
        assert_eq!(table.total_to(&[EU, US, 9], EU), 10 + 90 + 250);
        assert!(!admits(&cluster(40, true, 1), &need(ANY, false, vec![])), "no region above bit 31");
    }
}
