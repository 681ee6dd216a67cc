//! The Kubernetes orchestrator: one Jitsi Meet pod per conference with its media Service, web Service
//! and Ingress ([`super::jitsi_pod`]), on the cluster [`crate::domain::placement`] picks among those
//! configured ([`clusters`]: the clusters file), optionally handed over from a pool of warm pods
//! (`warm_pool.rs`). Everything it knows is in the clusters (labels name each object's agreement,
//! chain and contract), so a restarted backend adopts what runs and collects what is left over.
//!
//! A pod is only ever created once participants' media can reach it: its media Service first, the
//! Service's public address read (a load balancer's, once the provider assigned it; or the node
//! port the API server assigned, on the configured node addresses), then the pod advertising it.
//! Warm pods are made the same way, so a handed-over pod carries its address with it.
use std::{
    collections::BTreeSet,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec},
    core::v1::{Pod, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
    runtime::wait::await_condition,
};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::jitsi_pod::{self, AGREEMENT, HOST, IngressStyle, JitsiSettings, MediaAddress, Owner, PodPlan, Sizing};
use crate::{
    Error, Result,
    domain::{
        availability::ProbeOutcome,
        conference::{Conference, Deployed, room_name},
        placement::{self, Candidate, LatencyTable, Need, NoFit},
    },
};

pub mod clusters;
mod warm_pool;

use clusters::{ClusterConfig, ClustersFile, ConferenceDefaults, MediaKind, WarmPoolFor, client_for};

struct Cluster {
    config: ClusterConfig,
    pods: Api<Pod>,
    services: Api<Service>,
    ingresses: Api<Ingress>,
    /// CPU requested by this deployment's pods there, as last counted (and added to on each deploy).
    used_millicores: AtomicU64,
}

pub struct KubernetesOrchestrator {
    clusters: Vec<Cluster>,
    owner: Owner,
    settings: ConferenceDefaults,
    jitsi: JitsiSettings,
    app_id: String,
    latency: RwLock<LatencyTable>,
    file: PathBuf,
    file_modified: Mutex<Option<SystemTime>>,
    /// Woken when a warm pod was handed over, so the pool is refilled at once.
    pool_drawn: Arc<Notify>,
    /// The probe's client for the videobridges' REST interfaces.
    http: reqwest::Client,
}

/// Annotation: the CPU a pod requests in all, for counting a cluster's load.
const MILLICORES: &str = "conference.escrow/millicores";
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl KubernetesOrchestrator {
    /// Connects to every configured cluster. `app_id` is the JWT issuer prosody is told to accept;
    /// `pool_drawn` is woken whenever a warm pod is handed over (the upkeep loop waits on it).
    pub async fn connect(file: &Path, owner: Owner, app_id: String, pool_drawn: Arc<Notify>) -> Result<Self> {
        let config = ClustersFile::read(file)?;
        let mut clients = Vec::new();
        for cluster in &config.clusters {
            let client = client_for(cluster).await?;
            check_access(cluster, &client).await?;
            clients.push(client);
        }
        let this = Self::with_clients(config, clients, file, owner, app_id, pool_drawn);
        for cluster in &this.clusters {
            this.count_load(cluster).await?;
        }
        Ok(this)
    }

    /// The orchestrator over clients made already, one per cluster of `config`, in its order.
    pub fn with_clients(
        config: ClustersFile,
        clients: Vec<Client>,
        file: &Path,
        owner: Owner,
        app_id: String,
        pool_drawn: Arc<Notify>,
    ) -> Self {
        let clusters = config
            .clusters
            .into_iter()
            .zip(clients)
            .map(|(cluster, client)| Cluster {
                pods: Api::namespaced(client.clone(), &cluster.namespace),
                services: Api::namespaced(client.clone(), &cluster.namespace),
                ingresses: Api::namespaced(client, &cluster.namespace),
                config: cluster,
                used_millicores: AtomicU64::new(0),
            })
            .collect();
        Self {
            clusters,
            owner,
            settings: config.conference,
            jitsi: config.jitsi,
            app_id,
            latency: RwLock::new(config.latency),
            file: file.to_owned(),
            file_modified: Mutex::new(std::fs::metadata(file).and_then(|m| m.modified()).ok()),
            pool_drawn,
            http: reqwest::Client::builder()
                .timeout(PROBE_TIMEOUT)
                .build()
                .expect("a client without TLS settings builds"),
        }
    }

    pub fn sizing(&self, conference: &Conference) -> Sizing {
        let participants = conference.participants.unwrap_or(self.settings.default_participants);
        Sizing { participants, stream_kbps: conference.stream_kbps }
    }

    /// Which cluster the conference would go to now.
    pub fn place(&self, conference: &Conference) -> std::result::Result<usize, NoFit> {
        let need = Need {
            allowed_regions: conference.allowed_regions,
            gdpr: conference.gdpr,
            participant_regions: conference.participant_regions.clone(),
            millicores: self.sizing(conference).pod_millicores(),
        };
        let candidates: Vec<Candidate> = self
            .clusters
            .iter()
            .map(|c| Candidate {
                region: c.config.region,
                gdpr: c.config.gdpr,
                free_millicores: c.config.capacity_millicores.saturating_sub(c.used_millicores.load(Ordering::Relaxed)),
            })
            .collect();
        placement::place(&need, &candidates, &self.latency.read().unwrap())
    }

    pub async fn deploy(&self, conference: &Conference) -> Result<Deployed> {
        let id = conference.agreement;
        let (index, pod, fresh) = match self.find(id).await? {
            Some((index, pod)) => (index, pod, false),
            None => {
                // Room can go between the reconciler's fit check and here (another deploy took it).
                let index = self
                    .place(conference)
                    .map_err(|no_fit| Error::NoPlacement(format!("no cluster fits agreement {id} now ({no_fit:?})")))?;
                let cluster = &self.clusters[index];
                let sizing = self.sizing(conference);
                let warm = conference.warm_start || self.settings.warm_pool_for == WarmPoolFor::All;
                let handed_over =
                    if warm { self.hand_over_warm_pod(cluster, conference, &sizing).await? } else { None };
                let pod = match handed_over {
                    Some(pod) => pod,
                    None => {
                        let name = jitsi_pod::conference_name(id);
                        self.create_pod(cluster, Some(conference), &name, &sizing).await?;
                        cluster.pods.get(&name).await.map_err(|e| kube_error("reading the pod", e))?
                    }
                };
                (index, pod, true)
            }
        };
        let cluster = &self.clusters[index];
        let name = pod.metadata.name.clone().unwrap_or_default();
        // The host the pod was made for (its PUBLIC_URL and tokens' audience), whatever it was made as.
        let host = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(HOST).cloned())
            .unwrap_or_else(|| cluster.config.conference_host(&name));
        self.expose_web(cluster, id, &host).await?;
        let web = self.wait_until_answering(cluster, id, &name).await?;
        info!(agreement = id, cluster = cluster.config.name, fresh, %host, %web, "conference answers");
        Ok(Deployed { join_url: format!("https://{host}/{}", room_name(id)), fresh, region: cluster.config.region })
    }

    /// The agreement's web Service and Ingress (`https://<host>/`); what exists already is kept.
    async fn expose_web(&self, cluster: &Cluster, agreement: u64, host: &str) -> Result<()> {
        let service = jitsi_pod::web_service(&self.owner, agreement);
        match cluster.services.create(&PostParams::default(), &service).await {
            Ok(_) => {}
            Err(err) if is_status(&err, 409) => {}
            Err(err) => return Err(kube_error("creating the web Service", err)),
        }
        let web = &cluster.config.web;
        let style = IngressStyle {
            tls_secret: &web.tls_secret,
            class: web.ingress_class.as_deref(),
            annotations: &web.annotations,
        };
        let ingress = jitsi_pod::ingress(&self.owner, agreement, host, style);
        match cluster.ingresses.create(&PostParams::default(), &ingress).await {
            Ok(_) => Ok(()),
            Err(err) if is_status(&err, 409) => Ok(()),
            Err(err) => Err(kube_error("creating the Ingress", err)),
        }
    }

    /// Deletes the agreement's Ingress, web Service, pods and their media Services in every cluster;
    /// what is already gone is fine.
    pub async fn remove(&self, agreement: u64) -> Result<()> {
        let grace = DeleteParams::default().grace_period(self.settings.grace_period_secs);
        let name = jitsi_pod::conference_name(agreement);
        for cluster in &self.clusters {
            gone_if_missing(cluster.ingresses.delete(&name, &grace).await.map(|_| ()), "deleting the Ingress")?;
            gone_if_missing(cluster.services.delete(&name, &grace).await.map(|_| ()), "deleting the web Service")?;
            for pod in self.pods_of(cluster, &format!("{AGREEMENT}={agreement}")).await? {
                let pod = pod.metadata.name.unwrap_or_default();
                self.delete_pod(cluster, &pod, &grace).await?;
                info!(agreement, cluster = cluster.config.name, pod, "pod deleted");
            }
        }
        Ok(())
    }

    /// Deletes a pod and its media Service; what is already gone is fine.
    async fn delete_pod(&self, cluster: &Cluster, pod: &str, params: &DeleteParams) -> Result<()> {
        gone_if_missing(cluster.pods.delete(pod, params).await.map(|_| ()), "deleting the pod")?;
        let media = jitsi_pod::media_service_name(pod);
        gone_if_missing(cluster.services.delete(&media, params).await.map(|_| ()), "deleting the media Service")
    }

    /// Whether the agreement's conference is up: its pod ready, its web Service answering, and
    /// its videobridge healthy and, while two or more participants are in, forwarding media (its
    /// private REST interface on the pod's address: `/about/health`, `/colibri/stats`; see
    /// [`judge_videobridge`]). No pod at all: lost.
    pub async fn probe(&self, agreement: u64) -> Result<ProbeOutcome> {
        let Some((index, pod)) = self.find(agreement).await? else {
            return Ok(ProbeOutcome::lost("no pod of the conference"));
        };
        let cluster = &self.clusters[index];
        if !is_ready(&pod) {
            return Ok(ProbeOutcome::down("its pod is not ready"));
        }
        let web = match self.web_address(cluster, agreement).await? {
            Some(web) if answers(&web).await => web,
            Some(web) => return Ok(ProbeOutcome::down(format!("its web Service {web} does not answer"))),
            None => return Ok(ProbeOutcome::down("its web Service has no address")),
        };
        let Some(pod_ip) = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()) else {
            return Ok(ProbeOutcome::down("its pod has no address"));
        };
        let bridge = format!("http://{}:{}", url_host(pod_ip), jitsi_pod::JVB_REST_PORT);
        let health = match self.http.get(format!("{bridge}/about/health")).send().await {
            Ok(response) => response.status(),
            Err(err) => {
                return Ok(ProbeOutcome::down(format!("its videobridge's REST interface does not answer: {err}")));
            }
        };
        let stats = match self.http.get(format!("{bridge}/colibri/stats")).send().await {
            Ok(response) if response.status().is_success() => response.json::<serde_json::Value>().await.ok(),
            _ => None,
        };
        let (ok, detail) = judge_videobridge(health.is_success(), stats.as_ref());
        let detail = format!("pod ready, {web} answers; {detail}");
        Ok(if ok { ProbeOutcome::up(detail) } else { ProbeOutcome::down(detail) })
    }

    /// Agreements with a pod or a Service of this deployment in any cluster.
    pub async fn list(&self) -> Result<Vec<u64>> {
        let mut ids = BTreeSet::new();
        let params = ListParams::default().labels(&self.owner.selector(AGREEMENT));
        for cluster in &self.clusters {
            for pod in self.pods_of(cluster, AGREEMENT).await? {
                ids.extend(agreement_of(&pod.metadata));
            }
            let services = cluster.services.list(&params).await.map_err(|e| kube_error("listing Services", e))?;
            ids.extend(services.items.iter().filter_map(|s| agreement_of(&s.metadata)));
        }
        Ok(ids.into_iter().collect())
    }

    /// Reads the latency table again if the clusters file changed since it was last read.
    fn reload_latency(&self) {
        let modified = std::fs::metadata(&self.file).and_then(|m| m.modified()).ok();
        let mut seen = self.file_modified.lock().unwrap();
        if modified.is_none() || modified == *seen {
            return;
        }
        *seen = modified;
        match ClustersFile::read(&self.file) {
            Ok(file) => {
                info!(file = %self.file.display(), "latency table read again");
                *self.latency.write().unwrap() = file.latency;
            }
            Err(err) => warn!(%err, "the clusters file changed but cannot be read; keeping the latency table"),
        }
    }

    /// The agreement's live pod (not being deleted), and the index of its cluster.
    async fn find(&self, agreement: u64) -> Result<Option<(usize, Pod)>> {
        for (index, cluster) in self.clusters.iter().enumerate() {
            if let Some(pod) = self.pods_of(cluster, &format!("{AGREEMENT}={agreement}")).await?.into_iter().next() {
                return Ok(Some((index, pod)));
            }
        }
        Ok(None)
    }

    /// This deployment's pods in the cluster that match `selector` and are not being deleted.
    async fn pods_of(&self, cluster: &Cluster, selector: &str) -> Result<Vec<Pod>> {
        let params = ListParams::default().labels(&self.owner.selector(selector));
        let pods = cluster.pods.list(&params).await.map_err(|e| kube_error("listing pods", e))?;
        Ok(pods.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect())
    }

    async fn count_load(&self, cluster: &Cluster) -> Result<()> {
        let used = self.pods_of(cluster, "").await?.iter().filter_map(millicores_of).sum();
        cluster.used_millicores.store(used, Ordering::Relaxed);
        Ok(())
    }

    /// Creates pod `name` once its media address is known (its media Service made first); a pod made
    /// by an earlier attempt is kept.
    async fn create_pod(
        &self,
        cluster: &Cluster,
        conference: Option<&Conference>,
        name: &str,
        sizing: &Sizing,
    ) -> Result<()> {
        let media = self.media_address(cluster, name).await?;
        let mut annotations = self.annotations(cluster, sizing);
        if let Some(conference) = conference {
            annotations.extend(conference_annotations(conference));
        }
        let plan = PodPlan {
            name: name.to_owned(),
            agreement: conference.map(|c| c.agreement),
            owner: &self.owner,
            sizing: *sizing,
            jitsi: &self.jitsi,
            app_id: &self.app_id,
            internal_passwords: (random_secret(), random_secret()),
            grace_period_secs: i64::from(self.settings.grace_period_secs),
            annotations,
            host: cluster.config.conference_host(name),
            media,
            turn: cluster.config.turn.as_ref(),
        };
        match cluster.pods.create(&PostParams::default(), &jitsi_pod::pod(&plan)).await {
            Ok(_) => {
                cluster.used_millicores.fetch_add(sizing.pod_millicores(), Ordering::Relaxed);
                Ok(())
            }
            // Created by an earlier attempt that crashed before recording it: adopted below.
            Err(err) if is_status(&err, 409) => Ok(()),
            Err(err) => Err(kube_error("creating the pod", err)),
        }
    }

    fn annotations(&self, cluster: &Cluster, sizing: &Sizing) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([
            (MILLICORES.to_owned(), sizing.pod_millicores().to_string()),
            ("conference.escrow/cluster".to_owned(), cluster.config.name.clone()),
            ("conference.escrow/region".to_owned(), cluster.config.region.to_string()),
            ("conference.escrow/chain-id".to_owned(), self.owner.chain_id.to_string()),
            ("conference.escrow/contract".to_owned(), self.owner.contract.clone()),
        ])
    }

    /// Where pod `name`'s videobridge is reached from outside: its media Service is created (or found)
    /// and its address read, waiting for a load balancer's; the pod is created only after this.
    async fn media_address(&self, cluster: &Cluster, name: &str) -> Result<MediaAddress> {
        let media = &cluster.config.media;
        let service = jitsi_pod::media_service(&self.owner, name, media.kind.as_str(), &media.annotations);
        let service_name = jitsi_pod::media_service_name(name);
        let created = match cluster.services.create(&PostParams::default(), &service).await {
            Ok(created) => created,
            Err(err) if is_status(&err, 409) => {
                cluster.services.get(&service_name).await.map_err(|e| kube_error("reading the media Service", e))?
            }
            Err(err) => return Err(kube_error("creating the media Service", err)),
        };
        match media.kind {
            MediaKind::NodePort => {
                let port =
                    created.spec.as_ref().and_then(|s| s.ports.as_ref()?.first()?.node_port).ok_or_else(|| {
                        Error::Orchestrator(format!("media Service {service_name} has no node port").into())
                    })?;
                Ok(MediaAddress { addresses: media.node_addresses.clone(), port })
            }
            MediaKind::LoadBalancer => {
                let timeout = Duration::from_secs(self.settings.start_timeout_secs);
                let deadline = Instant::now() + timeout;
                let assigned = await_condition(cluster.services.clone(), &service_name, |s: Option<&Service>| {
                    s.is_some_and(|s| !load_balancer_ingress(s).is_empty())
                });
                let service = match tokio::time::timeout(timeout, assigned).await {
                    Ok(Ok(Some(service))) => service,
                    Ok(Ok(None)) => {
                        return Err(Error::Orchestrator(format!("media Service {service_name} was deleted").into()));
                    }
                    Ok(Err(err)) => return Err(Error::orchestrator(format!("watching Service {service_name}"), err)),
                    Err(_) => {
                        return Err(Error::Orchestrator(
                            format!(
                                "the load balancer of media Service {service_name} got no address within {} s: does \
                                 cluster {} provide UDP load balancers? (media type LoadBalancer)",
                                self.settings.start_timeout_secs, cluster.config.name
                            )
                            .into(),
                        ));
                    }
                };
                let addresses = resolve_ingress(&load_balancer_ingress(&service), deadline).await.ok_or_else(|| {
                    Error::Orchestrator(
                        format!("the load balancer of media Service {service_name} has a name that does not resolve")
                            .into(),
                    )
                })?;
                info!(cluster = cluster.config.name, pod = name, ?addresses, "media address assigned");
                Ok(MediaAddress { addresses, port: jitsi_pod::JVB_PORT })
            }
        }
    }

    /// The agreement's web Service inside the cluster (its cluster IP and port 80), which the probe
    /// connects to: the Ingress forwards participants there.
    async fn web_address(&self, cluster: &Cluster, agreement: u64) -> Result<Option<String>> {
        let service = cluster
            .services
            .get_opt(&jitsi_pod::conference_name(agreement))
            .await
            .map_err(|e| kube_error("reading the web Service", e))?;
        Ok(service
            .and_then(|s| s.spec?.cluster_ip.filter(|ip| ip != "None" && !ip.is_empty()))
            .map(|ip| format!("{}:{}", url_host(&ip), jitsi_pod::WEB_PORT)))
    }

    /// Waits until the agreement's pod `name` is ready (watching it, so a start is seen as it happens:
    /// all four containers' readiness, jicofo's only once it sees the bridge) and its web Service
    /// answers; the web Service's address.
    async fn wait_until_answering(&self, cluster: &Cluster, agreement: u64, name: &str) -> Result<String> {
        let timeout = Duration::from_secs(self.settings.start_timeout_secs);
        let too_late = || {
            Error::Orchestrator(
                format!(
                    "the conference of agreement {agreement} did not answer within {} s",
                    self.settings.start_timeout_secs
                )
                .into(),
            )
        };
        let deadline = Instant::now() + timeout;
        let ready = await_condition(cluster.pods.clone(), name, |pod: Option<&Pod>| pod.is_some_and(is_ready));
        match tokio::time::timeout(timeout, ready).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => return Err(Error::Orchestrator(format!("pod {name} was deleted while starting").into())),
            Ok(Err(err)) => return Err(Error::orchestrator(format!("watching pod {name}"), err)),
            Err(_) => return Err(too_late()),
        }
        loop {
            if let Some(web) = self.web_address(cluster, agreement).await?
                && answers(&web).await
            {
                return Ok(web);
            }
            if Instant::now() > deadline {
                return Err(too_late());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn conference_annotations(conference: &Conference) -> Vec<(String, String)> {
    vec![
        (AGREEMENT.to_owned(), conference.agreement.to_string()),
        ("conference.escrow/customer".to_owned(), conference.customer.clone()),
    ]
}

fn random_secret() -> String {
    alloy::hex::encode(rand::random::<[u8; 24]>())
}

/// The size a conference pod was made for, from the annotations [`jitsi_pod::pod`] writes.
fn sizing_of(pod: &Pod) -> Option<Sizing> {
    let annotations = pod.metadata.annotations.as_ref()?;
    Some(Sizing {
        participants: annotations.get(jitsi_pod::PARTICIPANTS)?.parse().ok()?,
        stream_kbps: annotations.get(jitsi_pod::STREAM_KBPS)?.parse().ok()?,
    })
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The CPU a pod of this deployment requests in all, from its annotation.
fn millicores_of(pod: &Pod) -> Option<u64> {
    pod.metadata.annotations.as_ref()?.get(MILLICORES)?.parse().ok()
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn agreement_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<u64> {
    meta.labels.as_ref()?.get(AGREEMENT)?.parse().ok()
}

/// An IPv6 address in brackets, as URLs and socket addresses write it; anything else as it is.
fn url_host(host: &str) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() { format!("[{host}]") } else { host.to_owned() }
}

/// What the videobridge's health and statistics say: up when healthy, its statistics readable, and,
/// with two or more participants (one alone receives nothing), packets sent to them (its
/// `packet_rate_upload`, packets a second from the bridge, above zero).
pub fn judge_videobridge(healthy: bool, stats: Option<&serde_json::Value>) -> (bool, String) {
    if !healthy {
        return (false, "videobridge unhealthy (/about/health)".into());
    }
    let Some(stats) = stats else {
        return (false, "videobridge healthy, its statistics unreadable (/colibri/stats)".into());
    };
    let number = |key: &str| stats[key].as_f64().or_else(|| stats[key].as_str().and_then(|s| s.parse().ok()));
    let participants = number("participants").or_else(|| number("endpoints")).unwrap_or(0.0);
    let conferences = number("conferences").unwrap_or(0.0);
    let (up, down) = (number("packet_rate_upload").unwrap_or(0.0), number("packet_rate_download").unwrap_or(0.0));
    let ok = participants < 2.0 || up > 0.0;
    let verdict = if participants < 2.0 {
        "answering"
    } else if ok {
        "forwarding"
    } else {
        "not forwarding"
    };
    (
        ok,
        format!(
            "videobridge healthy, {verdict}: {conferences} conferences, {participants} participants, packets/s to them {up}, from them {down}"
        ),
    )
}

/// Whether `address` (host:port) accepts a connection.
async fn answers(address: &str) -> bool {
    matches!(tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await, Ok(Ok(_)))
}

/// A load balancer Service's assigned addresses and names (empty until the provider assigns one).
fn load_balancer_ingress(service: &Service) -> Vec<(Option<String>, Option<String>)> {
    let ingress = service.status.as_ref().and_then(|s| s.load_balancer.as_ref()?.ingress.clone()).unwrap_or_default();
    ingress.into_iter().map(|i| (i.ip, i.hostname)).filter(|(ip, host)| ip.is_some() || host.is_some()).collect()
}

/// The IP addresses of a load balancer's ingress entries: its addresses, and the names some providers
/// give instead resolved (JVB advertises addresses only), retried until `deadline`.
async fn resolve_ingress(entries: &[(Option<String>, Option<String>)], deadline: Instant) -> Option<Vec<IpAddr>> {
    loop {
        let mut addresses = Vec::new();
        for (ip, host) in entries {
            if let Some(ip) = ip.as_deref().and_then(|ip| ip.parse().ok()) {
                addresses.push(ip);
            } else if let Some(host) = host
                && let Ok(resolved) = tokio::net::lookup_host((host.as_str(), 0)).await
            {
                addresses.extend(resolved.map(|a| a.ip()));
            }
        }
        addresses.sort();
        addresses.dedup();
        if !addresses.is_empty() {
            return Some(addresses);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether this backend may do what it does in the cluster's namespace (create pods, Services and
/// Ingresses), asked of the API server itself at start (SelfSubjectAccessReview, which any
/// authenticated user may ask): a Role from before Ingresses were used is refused here, not at the
/// first paid conference.
async fn check_access(cluster: &ClusterConfig, client: &Client) -> Result<()> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (group, resource) in [("", "pods"), ("", "services"), ("networking.k8s.io", "ingresses")] {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(cluster.namespace.clone()),
                    verb: Some("create".into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| Error::Config(format!("cluster {}: asking the API server for access: {e}", cluster.name)))?;
        if !answer.status.is_some_and(|s| s.allowed) {
            return Err(Error::Config(format!(
                "cluster {}: this backend may not create {resource} in namespace {}: apply deploy/rbac.yaml there \
                 (its Role grants pods, services and ingresses)",
                cluster.name, cluster.namespace
            )));
        }
    }
    Ok(())
}

/// A deletion's result, with "already gone" as success.
fn gone_if_missing(result: std::result::Result<(), kube::Error>, doing: &str) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(err) if is_status(&err, 404) => Ok(()),
        Err(err) => Err(kube_error(doing, err)),
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

fn kube_error(doing: &str, err: kube::Error) -> Error {
    Error::orchestrator(doing, err)
}

#[cfg(test)]
mod tests {
    //! The orchestrator's requests against a mock API (tower-test): which objects it asks for, by
    //! which selectors, and how it takes 404 and 409. The same paths run against a real API server
    //! in `tests/tests/kubernetes.rs`.

    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::{Value, json};
    use tower_test::mock::{self, Handle};

    use super::*;

    const FILE: &str = r#"
        [latency]
        ms = [[10, 90], [90, 10]]

        [[cluster]]
        name = "eu"
        region = 0
        gdpr = true
        capacity_millicores = 8000
        warm_pool = 1
        web = { domain = "meet-eu.example.org", tls_secret = "wildcard-tls" }
        media = { type = "LoadBalancer" }
    "#;

    fn orchestrator() -> (KubernetesOrchestrator, Handle<Request<Body>, Response<Body>>, Arc<Notify>) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "conferences");
        let owner = Owner { chain_id: 31337, contract: "0xabc".into() };
        let drawn = Arc::new(Notify::new());
        let config = ClustersFile::parse(FILE).unwrap();
        let this = KubernetesOrchestrator::with_clients(
            config,
            vec![client],
            Path::new("/nonexistent"),
            owner,
            "conference".into(),
            drawn.clone(),
        );
        (this, handle, drawn)
    }

    /// Answers the next request with `status` and `body`, after checking its method and path.
    async fn answer(
        handle: &mut Handle<Request<Body>, Response<Body>>,
        method: Method,
        path_and_query: &str,
        status: StatusCode,
        body: Value,
    ) -> Value {
        let (request, respond) = handle.next_request().await.expect("a request");
        assert_eq!(request.method(), method);
        let uri = request.uri().to_string();
        let decoded = uri.replace("%3D", "=").replace("%2C", ",").replace("%2F", "/");
        assert_eq!(decoded, path_and_query);
        let sent = request.into_body().collect_bytes().await.unwrap();
        respond
            .send_response(Response::builder().status(status).body(Body::from(body.to_string().into_bytes())).unwrap());
        serde_json::from_slice(&sent).unwrap_or(Value::Null)
    }

    fn status(code: u16, reason: &str) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": reason})
    }

    fn list(items: Vec<Value>) -> Value {
        json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})
    }

    fn pod(name: &str, labels: Value, ready: bool, deleting: bool) -> Value {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "resourceVersion": format!("rv-{name}")},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if deleting {
            pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        pod
    }

    const PODS: &str = "/api/v1/namespaces/conferences/pods";
    const OWNER: &str = "app.kubernetes.io/managed-by=conference-backend,conference.escrow/chain=31337,conference.escrow/contract=0xabc";

    #[tokio::test]
    async fn removing_what_is_already_gone_succeeds() {
        let (orchestrator, mut api, _) = orchestrator();
        let served = tokio::spawn(async move {
            let path = "/apis/networking.k8s.io/v1/namespaces/conferences/ingresses/conference-7?";
            let delete = answer(&mut api, Method::DELETE, path, StatusCode::NOT_FOUND, status(404, "NotFound")).await;
            assert_eq!(delete["gracePeriodSeconds"], 30, "deleted with the configured grace period");
            let path = "/api/v1/namespaces/conferences/services/conference-7?";
            answer(&mut api, Method::DELETE, path, StatusCode::NOT_FOUND, status(404, "NotFound")).await;
            let selector = format!("{PODS}?&labelSelector={OWNER},conference.escrow/agreement=7");
            answer(&mut api, Method::GET, &selector, StatusCode::OK, list(vec![])).await;
        });
        orchestrator.remove(7).await.unwrap();
        served.await.unwrap();
    }

    #[tokio::test]
    async fn lists_agreements_with_a_pod_or_a_service_and_skips_pods_being_deleted() {
        let (orchestrator, mut api, _) = orchestrator();
        let served = tokio::spawn(async move {
            let pods = list(vec![
                pod("conference-3", json!({"conference.escrow/agreement": "3"}), true, false),
                pod("conference-4", json!({"conference.escrow/agreement": "4"}), true, true),
            ]);
            let query = format!("?&labelSelector={OWNER},conference.escrow/agreement");
            answer(&mut api, Method::GET, &format!("{PODS}{query}"), StatusCode::OK, pods).await;
            let services = list(vec![
                json!({"metadata": {"name": "conference-5", "labels": {"conference.escrow/agreement": "5"}}}),
            ]);
            let path = format!("/api/v1/namespaces/conferences/services{query}");
            answer(&mut api, Method::GET, &path, StatusCode::OK, services).await;
        });
        assert_eq!(orchestrator.list().await.unwrap(), vec![3, 5]);
        served.await.unwrap();
    }

    #[tokio::test]
    async fn a_warm_pod_too_small_not_ready_or_taken_meanwhile_is_skipped_for_the_next() {
        let (orchestrator, mut api, drawn) = orchestrator();
        let served = tokio::spawn(async move {
            let warm = json!({"conference.escrow/pool": "warm"});
            // Made for two participants (before the pool's size changed): too small for three.
            let mut small = pod("conference-warm-small", warm.clone(), true, false);
            small["metadata"]["annotations"] =
                json!({"conference.escrow/participants": "2", "conference.escrow/stream-kbps": "1500"});
            let pods = list(vec![
                small,
                pod("conference-warm-starting", warm.clone(), false, false),
                pod("conference-warm-a", warm.clone(), true, false),
                pod("conference-warm-b", warm, true, false),
            ]);
            let query = format!("?&labelSelector={OWNER},conference.escrow/pool=warm");
            answer(&mut api, Method::GET, &format!("{PODS}{query}"), StatusCode::OK, pods).await;
            let first = format!("{PODS}/conference-warm-a?");
            let patch = answer(&mut api, Method::PATCH, &first, StatusCode::CONFLICT, status(409, "Conflict")).await;
            assert_eq!(patch["metadata"]["resourceVersion"], "rv-conference-warm-a", "only if unchanged since read");
            assert_eq!(patch["metadata"]["labels"]["conference.escrow/pool"], Value::Null, "no longer in the pool");
            assert_eq!(patch["metadata"]["labels"]["conference.escrow/agreement"], "9");
            let second = format!("{PODS}/conference-warm-b?");
            let handed = pod("conference-warm-b", json!({"conference.escrow/agreement": "9"}), true, false);
            answer(&mut api, Method::PATCH, &second, StatusCode::OK, handed).await;
        });
        let conference = Conference {
            agreement: 9,
            customer: "0xc".into(),
            allowed_regions: 1,
            gdpr: false,
            participant_regions: vec![],
            participants: Some(3),
            stream_kbps: 1_500,
            warm_start: true,
        };
        let sizing = orchestrator.sizing(&conference);
        let handed_over =
            orchestrator.hand_over_warm_pod(&orchestrator.clusters[0], &conference, &sizing).await.unwrap();
        assert_eq!(handed_over.and_then(|p| p.metadata.name).as_deref(), Some("conference-warm-b"));
        served.await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), drawn.notified()).await.expect("the pool is refilled at once");
    }

    #[tokio::test]
    async fn a_rewritten_latency_table_changes_placement_without_a_restart() {
        let dir = std::env::temp_dir().join(format!("conference-latency-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clusters.toml");
        let file = |eu_to_eu: u32| {
            format!(
                "[latency]\nms = [[{eu_to_eu}, 90], [90, 10]]\n\
                 [[cluster]]\nname = 'eu'\nregion = 0\ncapacity_millicores = 8000\n{EXPOSED}\
                 [[cluster]]\nname = 'us'\nregion = 1\ncapacity_millicores = 8000\n{EXPOSED}"
            )
        };
        std::fs::write(&path, file(10)).unwrap();
        let (service, _api) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "conferences");
        let config = ClustersFile::read(&path).unwrap();
        let owner = Owner { chain_id: 1, contract: "0xabc".into() };
        let orchestrator = KubernetesOrchestrator::with_clients(
            config,
            vec![client.clone(), client],
            &path,
            owner,
            "conference".into(),
            Arc::new(Notify::new()),
        );
        let conference = Conference {
            agreement: 1,
            customer: "0xc".into(),
            allowed_regions: 0b11,
            gdpr: false,
            participant_regions: vec![0, 0],
            participants: Some(3),
            stream_kbps: 1_500,
            warm_start: false,
        };
        assert_eq!(orchestrator.place(&conference), Ok(0), "EU participants: the EU cluster");
        // A probe measured the EU cluster as slow from the EU: it rewrites the table.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, file(500)).unwrap();
        let later = SystemTime::now() + Duration::from_secs(1);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        orchestrator.reload_latency();
        assert_eq!(orchestrator.place(&conference), Ok(1), "now the US cluster is closer to them");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn service_addresses_are_written_as_url_hosts() {
        assert_eq!(url_host("10.96.0.7"), "10.96.0.7");
        assert_eq!(url_host("fd00::7"), "[fd00::7]");
        assert_eq!(url_host("meet-eu.example.org"), "meet-eu.example.org");
    }

    /// A cluster's exposure that works: an Ingress domain with its certificate, load-balanced media.
    const EXPOSED: &str =
        "web = { domain = 'meet.example.org', tls_secret = 'wildcard-tls' }\nmedia = { type = 'LoadBalancer' }\n";

    #[test]
    fn the_clusters_file_is_checked() {
        assert!(ClustersFile::parse(FILE).is_ok());
        assert!(ClustersFile::parse("[latency]\nms = []\n").unwrap_err().contains("cluster"));
        let twice = format!(
            "[[cluster]]\nname='a'\nregion=0\ncapacity_millicores=1\n{EXPOSED}[[cluster]]\nname='a'\nregion=1\ncapacity_millicores=1\n{EXPOSED}"
        );
        assert!(ClustersFile::parse(&twice).unwrap_err().contains("listed twice"));
        let typo = format!("[[cluster]]\nname='a'\nregion=0\ncapacity_milicores=1\n{EXPOSED}");
        assert!(ClustersFile::parse(&typo).unwrap_err().contains("capacity_milicores"));
        let far = format!("[[cluster]]\nname='a'\nregion=40\ncapacity_millicores=1\n{EXPOSED}");
        assert!(ClustersFile::parse(&far).unwrap_err().contains("0..31"));
    }

    #[test]
    fn exposures_that_cannot_carry_a_conference_are_refused_with_the_reason() {
        let cluster = |exposure: &str| format!("[[cluster]]\nname='eu'\nregion=0\ncapacity_millicores=1\n{exposure}\n");
        let refused = |exposure: &str| ClustersFile::parse(&cluster(exposure)).unwrap_err();
        let web = "web = { domain = 'meet.example.org', tls_secret = 'wildcard-tls' }\n";
        assert!(refused("media = { type = 'LoadBalancer' }").contains("missing field `web`"));
        assert!(refused(web).contains("missing field `media`"));
        // A node port with no address to advertise: the bridge would offer its pod address.
        let why = refused(&format!("{web}media = {{ type = 'NodePort' }}"));
        assert!(why.starts_with("cluster eu: media type NodePort needs node_addresses"), "{why}");
        let why = refused(&format!("{web}media = {{ type = 'NodePort', node_addresses = ['127.0.0.1'] }}"));
        assert!(why.contains("127.0.0.1 reaches no participant"), "{why}");
        let why = refused(&format!("{web}media = {{ type = 'NodePort', node_addresses = ['nodes.example.org'] }}"));
        assert!(why.contains("node_addresses"), "addresses, not names: {why}");
        assert!(refused(&format!("{web}media = {{ type = 'ClusterIP' }}")).contains("unknown variant `ClusterIP`"));
        let why = refused("web = { domain = 'meet.example.org', tls_secret = '' }\nmedia = { type = 'LoadBalancer' }");
        assert!(why.contains("web.tls_secret is empty"), "{why}");
        let why = refused("web = { domain = 'localhost', tls_secret = 't' }\nmedia = { type = 'LoadBalancer' }");
        assert!(why.contains("is not a DNS zone"), "{why}");
        let media = "media = { type = 'LoadBalancer' }\n";
        let why = refused(&format!(
            "{web}{media}turn = {{ host = 'turn.example.org', transports = ['sctp'], secret_name = 'coturn' }}"
        ));
        assert!(why.contains("turn.transports"), "{why}");
        // Keys of the old single-Service design say what replaced them.
        let why = refused(&format!("service_type = 'LoadBalancer'\n{web}{media}"));
        assert!(why.contains("service_type was replaced by [cluster.web]"), "{why}");
        let old = format!("[jitsi]\njvb_advertise_ips = '203.0.113.7'\n{}", cluster(&format!("{web}{media}")));
        assert!(ClustersFile::parse(&old).unwrap_err().contains("jvb_advertise_ips was removed"));

        let node_port = format!(
            "{web}[cluster.media]\ntype = 'NodePort'\nnode_addresses = ['203.0.113.10', '2001:db8::10']\n\
             [cluster.turn]\nhost = 'turn.example.org'\nsecret_name = 'coturn'\n"
        );
        let file = ClustersFile::parse(&cluster(&node_port)).unwrap();
        let eu = &file.clusters[0];
        assert_eq!(eu.media.kind, MediaKind::NodePort);
        assert_eq!(eu.media.node_addresses.len(), 2);
        let turn = eu.turn.as_ref().unwrap();
        assert_eq!(
            (turn.port, turn.transports.as_slice(), turn.secret_key.as_str()),
            (443, &["udp".to_owned(), "tcp".to_owned()][..], "static-auth-secret")
        );
        assert_eq!(eu.conference_host("conference-7"), "conference-7.meet.example.org");
    }

    #[test]
    fn the_videobridge_is_up_while_healthy_and_forwarding_to_two_or_more() {
        let stats = |participants: u64, up: u64| json!({ "conferences": 1, "participants": participants, "packet_rate_upload": up, "packet_rate_download": up });
        let (ok, detail) = judge_videobridge(true, Some(&stats(3, 120)));
        assert!(ok && detail.contains("forwarding") && detail.contains("3 participants"), "{detail}");
        let (ok, detail) = judge_videobridge(true, Some(&stats(3, 0)));
        assert!(!ok && detail.contains("not forwarding"), "{detail}");
        let (ok, detail) = judge_videobridge(true, Some(&stats(1, 0)));
        assert!(ok && detail.contains("answering"), "one participant alone receives nothing: {detail}");
        assert!(!judge_videobridge(false, Some(&stats(3, 120))).0, "unhealthy");
        assert!(!judge_videobridge(true, None).0, "statistics unreadable");
    }
}
