//! The Kubernetes orchestrator's configuration: the clusters file, its checks, and a client per
//! cluster.
//!
//! The clusters file (TOML, `--clusters-file`):
//!
//! ```toml
//! [latency]          # placement's table: ms[from participant region][to cluster region]
//! ms = [[10, 90, 180], [90, 10, 150], [180, 150, 10]]
//!
//! [conference]       # optional; the defaults are shown
//! default_participants = 10   # when the customer registered none
//! grace_period_secs = 30
//! start_timeout_secs = 300
//! warm_pool_for = "flexible"  # or "all": which agreements get a warm pod when one is ready
//!
//! [jitsi]            # optional: images and settings (see JitsiSettings)
//!
//! [[cluster]]
//! name = "eu"
//! region = 0                  # a bit number of the contract's region masks
//! gdpr = true
//! capacity_millicores = 16000 # CPU for conferences (warm pods count)
//! namespace = "conferences"
//! kubeconfig = "/etc/conference/eu.kubeconfig"  # omitted: the cluster the backend runs in
//! context = "eu"              # omitted: the file's current context
//! service_type = "LoadBalancer"
//! warm_pool = 2               # idle pods kept ready
//! ```
//!
//! The latency table is read again whenever the file changes, so a probe that measures latencies
//! (or an operator) refreshes placement by rewriting it, without a restart.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};
use serde::Deserialize;

use crate::orchestrator::jitsi_pod::JitsiSettings;
use crate::{Error, Result, domain::placement::LatencyTable};

/// The clusters file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClustersFile {
    #[serde(default)]
    pub latency: LatencyTable,
    #[serde(default)]
    pub conference: ConferenceDefaults,
    #[serde(default)]
    pub jitsi: JitsiSettings,
    #[serde(rename = "cluster")]
    pub clusters: Vec<ClusterConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
/// The `[conference]` section: what a conference gets when the agreement does not say.
pub struct ConferenceDefaults {
    pub default_participants: u64,
    pub grace_period_secs: u32,
    pub start_timeout_secs: u64,
    pub warm_pool_for: WarmPoolFor,
}

impl Default for ConferenceDefaults {
    fn default() -> Self {
        Self {
            default_participants: 10,
            grace_period_secs: 30,
            start_timeout_secs: 300,
            warm_pool_for: WarmPoolFor::Flexible,
        }
    }
}

/// Which agreements are handed a warm pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarmPoolFor {
    /// FlexiblePeriod agreements, whose minimum charge pays for a fast start.
    Flexible,
    All,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    pub region: u8,
    #[serde(default)]
    pub gdpr: bool,
    pub capacity_millicores: u64,
    #[serde(default = "ClusterConfig::default_namespace")]
    pub namespace: String,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    #[serde(default = "ClusterConfig::default_service_type")]
    pub service_type: String,
    #[serde(default)]
    pub warm_pool: u32,
    /// The participants a warm pod is sized for (default: the conference default).
    pub warm_participants: Option<u64>,
}

impl ClusterConfig {
    fn default_namespace() -> String {
        "conferences".into()
    }

    fn default_service_type() -> String {
        "LoadBalancer".into()
    }
}

impl ClustersFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("the clusters file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("the clusters file {}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let file: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut names = BTreeSet::new();
        for cluster in &file.clusters {
            if cluster.region >= 32 {
                return Err(format!("cluster {}: region {} is not 0..31", cluster.name, cluster.region));
            }
            if !names.insert(&cluster.name) {
                return Err(format!("cluster {} is listed twice", cluster.name));
            }
        }
        if file.clusters.is_empty() {
            return Err("no [[cluster]] is listed".into());
        }
        Ok(file)
    }
}

pub(super) async fn client_for(cluster: &ClusterConfig) -> Result<Client> {
    let config = match &cluster.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("cluster {}: kubeconfig {}: {e}", cluster.name, path.display())))?;
            let options = KubeConfigOptions { context: cluster.context.clone(), ..Default::default() };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| Error::Config(format!("cluster {}: {e}", cluster.name)))?
        }
        None => kube::Config::incluster()
            .map_err(|e| Error::Config(format!("cluster {}: not running in a cluster: {e}", cluster.name)))?,
    };
    Client::try_from(config).map_err(|e| Error::Config(format!("cluster {}: {e}", cluster.name)))
}
