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
//! warm_pool = 2               # idle pods kept ready
//!
//! [cluster.web]               # how participants reach each conference's page and signalling (TCP)
//! domain = "meet-eu.example.org"       # conference pod P is https://P.meet-eu.example.org/
//! tls_secret = "meet-eu-wildcard-tls"  # a certificate for *.meet-eu.example.org, in `namespace`
//! ingress_class = "nginx"     # optional: the Ingress class; annotations = { ... } optional too
//!
//! [cluster.media]             # how participants' media reach each videobridge (UDP)
//! type = "LoadBalancer"       # a UDP load balancer per pod; or "NodePort" with node_addresses
//!
//! [cluster.turn]              # optional: a TURN server (coturn) for networks that block UDP
//! host = "turn-eu.example.org"
//! secret_name = "coturn"      # the Secret (in `namespace`) with coturn's static-auth-secret
//! ```
//!
//! What each choice means, and why, is in `deploy/README.md` ("Exposure"). A configuration that
//! cannot carry a conference is refused here, when the service starts, with the reason.
//!
//! The latency table is read again whenever the file changes, so a probe that measures latencies
//! (or an operator) refreshes placement by rewriting it, without a restart.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::{Path, PathBuf},
};

use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};
use serde::Deserialize;

use crate::orchestrator::jitsi_pod::{JitsiSettings, TurnServer};
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
    #[serde(default)]
    pub warm_pool: u32,
    /// The participants a warm pod is sized for (default: the conference default).
    pub warm_participants: Option<u64>,
    pub web: WebExposure,
    pub media: MediaExposure,
    pub turn: Option<TurnServer>,
}

impl ClusterConfig {
    fn default_namespace() -> String {
        "conferences".into()
    }

    /// The public host of conference pod `pod`: `<pod>.<domain>`, under the wildcard certificate.
    pub fn conference_host(&self, pod: &str) -> String {
        format!("{pod}.{}", self.web.domain)
    }
}

/// The web side of a conference (page, BOSH, XMPP websocket: TCP): an Ingress per conference on
/// `<pod>.<domain>` with the wildcard certificate, in front of the web container's plain HTTP
/// (`DISABLE_HTTPS=1`), as the Jitsi Helm chart does (`web.ingress` in its `values.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebExposure {
    /// The DNS zone whose wildcard (`*.<domain>`) points at the cluster's Ingress controller.
    pub domain: String,
    /// The Secret (type `kubernetes.io/tls`, in the conference namespace) with a certificate for
    /// `*.<domain>`, e.g. from cert-manager with a DNS-01 issuer.
    pub tls_secret: String,
    /// The Ingress class (`spec.ingressClassName`); omitted: the cluster's default class.
    pub ingress_class: Option<String>,
    /// Annotations on every Ingress (e.g. the controller's websocket read timeout).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The media side (the videobridge's UDP), separate from the web side: a mixed TCP+UDP load
/// balancer stays pending on providers without them (the chart also exposes JVB with a Service of
/// its own, `jvb.service` in its `values.yaml`). Either way the videobridge learns its public
/// address before it starts: the Service is created first and its address put into the pod.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaExposure {
    #[serde(rename = "type")]
    pub kind: MediaKind,
    /// Annotations on every media Service (e.g. the provider's load balancer type).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// NodePort only: the nodes' public addresses, advertised by every videobridge (the chart's
    /// `jvb.publicIPs`, "Option 2" of its `docs/guides/exposing.md`).
    #[serde(default)]
    pub node_addresses: Vec<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MediaKind {
    /// A UDP load balancer per conference pod; the pod is created once its address is known.
    LoadBalancer,
    /// A node port per conference pod (`JVB_PORT` equal to it), on the nodes' public addresses.
    NodePort,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoadBalancer => "LoadBalancer",
            Self::NodePort => "NodePort",
        }
    }
}

impl ClustersFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("the clusters file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("the clusters file {}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let file: Self = toml::from_str(text).map_err(|e| {
            let message = e.to_string();
            // Keys of earlier versions that no longer mean what they did: say what replaced them.
            if message.contains("unknown field `service_type`") {
                format!("{message}\nservice_type was replaced by [cluster.web] (an Ingress) and [cluster.media] (a UDP Service per pod): see deploy/README.md")
            } else if message.contains("unknown field `jvb_advertise_ips`") {
                format!("{message}\njvb_advertise_ips was removed: one address for every videobridge is wrong; each pod advertises its own media Service's ([cluster.media])")
            } else {
                message
            }
        })?;
        let mut names = BTreeSet::new();
        for cluster in &file.clusters {
            if cluster.region >= 32 {
                return Err(format!("cluster {}: region {} is not 0..31", cluster.name, cluster.region));
            }
            if !names.insert(&cluster.name) {
                return Err(format!("cluster {} is listed twice", cluster.name));
            }
            cluster.check().map_err(|why| format!("cluster {}: {why}", cluster.name))?;
        }
        if file.clusters.is_empty() {
            return Err("no [[cluster]] is listed".into());
        }
        Ok(file)
    }
}

/// The longest pod name the orchestrator gives (`conference-` and a u64, or `conference-warm-` and
/// eight hex digits): its host label must fit DNS's 63 characters.
const LONGEST_POD_NAME: usize = "conference-18446744073709551615".len();

impl ClusterConfig {
    /// Refuses what cannot carry a conference: no certificate for the hosts, a NodePort videobridge
    /// with no address to advertise, a TURN server without a host or credentials.
    fn check(&self) -> std::result::Result<(), String> {
        let domain = &self.web.domain;
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !domain.contains('.') || !domain.split('.').all(valid_label) {
            return Err(format!(
                "web.domain {domain:?} is not a DNS zone (lowercase labels, e.g. \"meet-eu.example.org\") whose wildcard \
                 points at the Ingress controller"
            ));
        }
        if LONGEST_POD_NAME + 1 + domain.len() > 253 {
            return Err(format!("web.domain {domain:?} is too long for a conference host under it"));
        }
        if self.web.tls_secret.trim().is_empty() {
            return Err("web.tls_secret is empty: participants need a certificate for *.<domain>, or every \
                        browser warns and embeds fail"
                .into());
        }
        if self.media.kind == MediaKind::NodePort && self.media.node_addresses.is_empty() {
            return Err("media type NodePort needs node_addresses: the nodes' public IP addresses the videobridges \
                        advertise (without them they advertise pod addresses nobody outside reaches)"
                .into());
        }
        if self.media.kind == MediaKind::LoadBalancer && !self.media.node_addresses.is_empty() {
            return Err("media.node_addresses is for type NodePort: a LoadBalancer videobridge advertises its \
                        load balancer's address"
                .into());
        }
        if let Some(address) = self.media.node_addresses.iter().find(|a| a.is_loopback() || a.is_unspecified()) {
            return Err(format!("media.node_addresses: {address} reaches no participant"));
        }
        if let Some(turn) = &self.turn {
            if turn.host.trim().is_empty() {
                return Err("turn.host is empty".into());
            }
            if turn.transports.is_empty() || turn.transports.iter().any(|t| t != "udp" && t != "tcp") {
                return Err(format!("turn.transports {:?}: each must be \"udp\" or \"tcp\"", turn.transports));
            }
            if turn.secret_name.trim().is_empty() || turn.secret_key.trim().is_empty() {
                return Err("turn.secret_name and turn.secret_key name coturn's static-auth-secret".into());
            }
        }
        Ok(())
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
