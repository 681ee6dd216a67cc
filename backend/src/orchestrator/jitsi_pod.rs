//! What one conference is on Kubernetes: a Pod running Jitsi Meet's four containers (web, prosody,
//! jicofo, jvb) and a Service in front of it, built here as plain values so that every field can be
//! read and tested without a cluster.
//!
//! ## Sizing
//! The videobridge (jvb) does the work: it forwards each participant's video to every other one, up
//! to `LAST_N` videos per receiver, so it forwards `n × min(n − 1, LAST_N)` streams for `n`
//! participants, and its CPU grows with those streams times their bitrate. Jitsi's own load tests
//! saturate one core near 18 participants in HD (1.5 Mbit/s per stream), that is 18 × 17 = 306 HD
//! streams per core; the model scales that by the quality's bitrate. Memory grows with the streams'
//! buffers. The pod's bandwidth annotations (honoured by the CNI bandwidth plugin) are the forwarded
//! streams times their bitrate out, and every participant's simulcast layers (≈ 1.5 × the top
//! layer) in. The other three containers are small and fixed.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Pod, PodSpec, Probe, ResourceRequirements,
        SecretKeySelector, Service, ServicePort, ServiceSpec,
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use serde::Deserialize;

/// Label and annotation keys.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "conference-backend";
pub const AGREEMENT: &str = "conference.escrow/agreement";
pub const CHAIN: &str = "conference.escrow/chain";
pub const CONTRACT: &str = "conference.escrow/contract";
/// `warm` on an idle pod of the pool; removed when the pod is handed to an agreement.
pub const POOL: &str = "conference.escrow/pool";
/// Annotations: what the pod was sized for.
pub const PARTICIPANTS: &str = "conference.escrow/participants";
pub const STREAM_KBPS: &str = "conference.escrow/stream-kbps";

/// The most videos a participant receives (Jitsi's `channelLastN`).
pub const LAST_N: u64 = 20;
/// HD streams one core of the videobridge forwards (18 participants × 17 streams each).
const HD_STREAMS_PER_CORE: u64 = 18 * 17;
const HD_KBPS: u64 = 1_500;
pub const HTTPS_PORT: i32 = 443;
pub const JVB_PORT: i32 = 10_000;
/// The videobridge's private REST interface (health, statistics), reached by the monitor only.
pub const JVB_REST_PORT: i32 = 8080;

/// Which chain and contract a conference belongs to: several deployments may share a namespace, and
/// each only ever touches its own pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub chain_id: u64,
    /// The escrow contract, lowercase hex.
    pub contract: String,
}

impl Owner {
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.to_owned(), MANAGER.to_owned()),
            (CHAIN.to_owned(), self.chain_id.to_string()),
            (CONTRACT.to_owned(), self.contract.clone()),
        ])
    }

    /// A label selector for this owner's objects, with `more` appended (`key=value` or a bare key).
    pub fn selector(&self, more: &str) -> String {
        let mut selector = format!("{MANAGED_BY}={MANAGER},{CHAIN}={},{CONTRACT}={}", self.chain_id, self.contract);
        if !more.is_empty() {
            selector.push(',');
            selector.push_str(more);
        }
        selector
    }
}

/// The conference's resources, from its participants and the bitrate of one video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub participants: u64,
    pub stream_kbps: u64,
}

impl Sizing {
    pub fn streams(&self) -> u64 {
        self.participants * self.participants.saturating_sub(1).min(LAST_N)
    }

    pub fn jvb_millicores(&self) -> u64 {
        let millicores = (self.streams() * self.stream_kbps * 1_000).div_ceil(HD_STREAMS_PER_CORE * HD_KBPS);
        round_up(millicores.max(250), 50)
    }

    pub fn jvb_memory_mib(&self) -> u64 {
        768 + 2 * self.streams()
    }

    pub fn egress_mbps(&self) -> u64 {
        (self.streams() * self.stream_kbps).div_ceil(1_000).max(1)
    }

    pub fn ingress_mbps(&self) -> u64 {
        (self.participants * self.stream_kbps * 3).div_ceil(2_000).max(1)
    }

    /// The CPU the whole pod requests: what placement counts against a cluster's capacity.
    pub fn pod_millicores(&self) -> u64 {
        WEB.0 + PROSODY.0 + JICOFO.0 + self.jvb_millicores()
    }

    /// Whether a pod sized `self` can host a conference sized `other`.
    pub fn covers(&self, other: &Sizing) -> bool {
        self.jvb_millicores() >= other.jvb_millicores() && self.jvb_memory_mib() >= other.jvb_memory_mib()
    }
}

fn round_up(value: u64, step: u64) -> u64 {
    value.div_ceil(step) * step
}

/// The small containers' (millicores, MiB), whatever the conference's size.
const WEB: (u64, u64) = (100, 128);
const PROSODY: (u64, u64) = (100, 128);
const JICOFO: (u64, u64) = (100, 384);

/// The images and Jitsi settings every conference pod gets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JitsiSettings {
    pub web_image: String,
    pub prosody_image: String,
    pub jicofo_image: String,
    pub jvb_image: String,
    /// The Secret (in the conference namespace) and key holding the JWT secret prosody checks tokens
    /// with; the backend signs them with the same value (`JITSI_APP_SECRET`).
    pub jwt_secret_name: String,
    pub jwt_secret_key: String,
    /// The videobridge's public addresses (`JVB_ADVERTISE_IPS`), where the node's own is not reachable.
    pub jvb_advertise_ips: Option<String>,
}

impl Default for JitsiSettings {
    fn default() -> Self {
        let image = |name: &str| format!("docker.io/jitsi/{name}:stable-9955");
        Self {
            web_image: image("web"),
            prosody_image: image("prosody"),
            jicofo_image: image("jicofo"),
            jvb_image: image("jvb"),
            jwt_secret_name: "jitsi-jwt".into(),
            jwt_secret_key: "app-secret".into(),
            jvb_advertise_ips: None,
        }
    }
}

/// One conference pod to create.
#[derive(Debug, Clone)]
pub struct PodPlan<'a> {
    pub name: String,
    /// None for an idle pod of the warm pool.
    pub agreement: Option<u64>,
    pub owner: &'a Owner,
    pub sizing: Sizing,
    pub jitsi: &'a JitsiSettings,
    /// The JWT issuer prosody accepts (the backend's `JITSI_APP_ID`).
    pub app_id: &'a str,
    /// Passwords of the XMPP accounts jicofo and jvb use inside the pod; fresh for each pod.
    pub internal_passwords: (String, String),
    /// Seconds Kubernetes gives the conference to end cleanly when it is deleted.
    pub grace_period_secs: i64,
    /// Said in annotations: who to ask, and why it is sized so.
    pub annotations: BTreeMap<String, String>,
}

/// The name of an agreement's Service, and of its pod when started cold.
pub fn conference_name(agreement: u64) -> String {
    format!("conference-{agreement}")
}

pub fn labels(owner: &Owner, agreement: Option<u64>) -> BTreeMap<String, String> {
    let mut labels = owner.labels();
    labels.insert("app.kubernetes.io/name".into(), "jitsi-meet".into());
    match agreement {
        Some(id) => labels.insert(AGREEMENT.into(), id.to_string()),
        None => labels.insert(POOL.into(), "warm".into()),
    };
    labels
}

pub fn pod(plan: &PodPlan) -> Pod {
    let sizing = plan.sizing;
    let mut annotations = plan.annotations.clone();
    annotations.insert("kubernetes.io/egress-bandwidth".into(), format!("{}M", sizing.egress_mbps()));
    annotations.insert("kubernetes.io/ingress-bandwidth".into(), format!("{}M", sizing.ingress_mbps()));
    annotations.insert(PARTICIPANTS.into(), sizing.participants.to_string());
    annotations.insert(STREAM_KBPS.into(), sizing.stream_kbps.to_string());

    let (jicofo_password, jvb_password) = &plan.internal_passwords;
    let xmpp = [
        ("XMPP_DOMAIN", "meet.jitsi"),
        ("XMPP_AUTH_DOMAIN", "auth.meet.jitsi"),
        ("XMPP_MUC_DOMAIN", "muc.meet.jitsi"),
        ("XMPP_INTERNAL_MUC_DOMAIN", "internal-muc.meet.jitsi"),
        ("XMPP_GUEST_DOMAIN", "guest.meet.jitsi"),
        // The four containers share the pod's network: each reaches the others on localhost.
        ("XMPP_SERVER", "localhost"),
        ("XMPP_BOSH_URL_BASE", "http://localhost:5280"),
        ("TZ", "UTC"),
    ];
    let auth = [("ENABLE_AUTH", "1"), ("AUTH_TYPE", "jwt"), ("ENABLE_GUESTS", "0")];
    let env = |pairs: &[(&str, &str)]| -> Vec<EnvVar> {
        xmpp.iter().chain(pairs).map(|(name, value)| plain(name, value)).collect()
    };
    let jwt_secret = EnvVar {
        name: "JWT_APP_SECRET".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: plan.jitsi.jwt_secret_name.clone(),
                key: plan.jitsi.jwt_secret_key.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    let mut web = env(&auth);
    web.push(plain("DISABLE_HTTPS", "0"));
    let mut prosody = env(&auth);
    prosody.extend([
        plain("JWT_APP_ID", plan.app_id),
        plain("JWT_ACCEPTED_ISSUERS", plan.app_id),
        plain("JWT_ACCEPTED_AUDIENCES", "jitsi"),
        plain("JICOFO_AUTH_PASSWORD", jicofo_password),
        plain("JVB_AUTH_PASSWORD", jvb_password),
        jwt_secret,
    ]);
    let mut jicofo = env(&auth);
    jicofo.extend([plain("JICOFO_AUTH_PASSWORD", jicofo_password), plain("JICOFO_MAX_MEMORY", "256m")]);
    let jvb_memory = sizing.jvb_memory_mib();
    let mut jvb = env(&[]);
    jvb.extend([
        plain("JVB_AUTH_PASSWORD", jvb_password),
        plain("JVB_PORT", &JVB_PORT.to_string()),
        // The Java heap, leaving a quarter of the container's memory to everything else.
        plain("VIDEOBRIDGE_MAX_MEMORY", &format!("{}m", jvb_memory * 3 / 4)),
        // Its private REST interface on 8080 (`/about/health`, `/colibri/stats`): the monitor's probe
        // reads the bridge's health and statistics there.
        plain("JVB_ENABLE_APIS", "rest,colibri"),
    ]);
    if let Some(ips) = &plan.jitsi.jvb_advertise_ips {
        jvb.push(plain("JVB_ADVERTISE_IPS", ips));
    }

    let containers = vec![
        container("web", &plan.jitsi.web_image, web, WEB, &[("https", HTTPS_PORT, "TCP"), ("http", 80, "TCP")])
            .with_readiness(80, "/"),
        container("prosody", &plan.jitsi.prosody_image, prosody, PROSODY, &[("xmpp-client", 5222, "TCP")]),
        container("jicofo", &plan.jitsi.jicofo_image, jicofo, JICOFO, &[]),
        container(
            "jvb",
            &plan.jitsi.jvb_image,
            jvb,
            (sizing.jvb_millicores(), jvb_memory),
            &[("jvb", JVB_PORT, "UDP"), ("jvb-health", JVB_REST_PORT, "TCP")],
        )
        .with_readiness(JVB_REST_PORT, "/about/health"),
    ];

    Pod {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            labels: Some(labels(plan.owner, plan.agreement)),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers,
            restart_policy: Some("Always".into()),
            // The conference needs no Kubernetes API access, nor the namespace's service links.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(plan.grace_period_secs),
            ..Default::default()
        }),
        status: None,
    }
}

/// The agreement's Service: HTTPS for the web app and signalling, UDP for the media.
pub fn service(owner: &Owner, agreement: u64, service_type: &str) -> Service {
    let mut selector = owner.labels();
    selector.insert(AGREEMENT.into(), agreement.to_string());
    let port = |name: &str, port: i32, protocol: &str| ServicePort {
        name: Some(name.into()),
        port,
        protocol: Some(protocol.into()),
        target_port: Some(IntOrString::Int(port)),
        ..Default::default()
    };
    Service {
        metadata: ObjectMeta {
            name: Some(conference_name(agreement)),
            labels: Some(labels(owner, Some(agreement))),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(service_type.into()),
            selector: Some(selector),
            ports: Some(vec![port("https", HTTPS_PORT, "TCP"), port("jvb", JVB_PORT, "UDP")]),
            ..Default::default()
        }),
        status: None,
    }
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

fn container(
    name: &str,
    image: &str,
    env: Vec<EnvVar>,
    (millicores, mib): (u64, u64),
    ports: &[(&str, i32, &str)],
) -> Container {
    let requests = BTreeMap::from([
        ("cpu".to_owned(), Quantity(format!("{millicores}m"))),
        ("memory".to_owned(), Quantity(format!("{mib}Mi"))),
    ]);
    // CPU may burst to twice the request; memory is not compressible, so its limit is its request.
    let limits = BTreeMap::from([
        ("cpu".to_owned(), Quantity(format!("{}m", millicores * 2))),
        ("memory".to_owned(), Quantity(format!("{mib}Mi"))),
    ]);
    Container {
        name: name.into(),
        image: Some(image.into()),
        env: Some(env),
        ports: (!ports.is_empty()).then(|| {
            ports
                .iter()
                .map(|&(name, port, protocol)| ContainerPort {
                    name: Some(name.into()),
                    container_port: port,
                    protocol: Some(protocol.into()),
                    ..Default::default()
                })
                .collect()
        }),
        resources: Some(ResourceRequirements { requests: Some(requests), limits: Some(limits), ..Default::default() }),
        ..Default::default()
    }
}

trait WithReadiness {
    fn with_readiness(self, port: i32, path: &str) -> Self;
}

impl WithReadiness for Container {
    fn with_readiness(mut self, port: i32, path: &str) -> Self {
        self.readiness_probe = Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(participants: u64) -> Sizing {
        Sizing { participants, stream_kbps: HD_KBPS }
    }

    #[test]
    fn a_videobridge_core_holds_eighteen_hd_participants() {
        assert_eq!(hd(18).streams(), 306);
        assert_eq!(hd(18).jvb_millicores(), 1_000);
        assert_eq!(hd(19).jvb_millicores(), 1_150, "342 streams: just over a core, rounded up to 50m");
        assert_eq!(hd(2).jvb_millicores(), 250, "never below a quarter core");
        // Full HD doubles the bitrate and the CPU; receivers see at most LAST_N videos.
        assert_eq!(Sizing { participants: 18, stream_kbps: 3_000 }.jvb_millicores(), 2_000);
        assert_eq!(hd(100).streams(), 100 * LAST_N);
        assert_eq!(hd(18).egress_mbps(), 459);
        assert_eq!(hd(18).ingress_mbps(), 41);
        assert_eq!(hd(18).pod_millicores(), 1_300);
        assert!(hd(20).covers(&hd(10)) && !hd(10).covers(&hd(20)));
    }

    #[test]
    fn the_pod_names_its_agreement_and_sizes_the_videobridge() {
        let owner = Owner { chain_id: 31337, contract: "0xabc".into() };
        let jitsi = JitsiSettings::default();
        let plan = PodPlan {
            name: conference_name(7),
            agreement: Some(7),
            owner: &owner,
            sizing: hd(18),
            jitsi: &jitsi,
            app_id: "conference",
            internal_passwords: ("a".into(), "b".into()),
            grace_period_secs: 30,
            annotations: BTreeMap::new(),
        };
        let pod = pod(&plan);
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[AGREEMENT], "7");
        assert_eq!(labels[CHAIN], "31337");
        assert_eq!(labels[CONTRACT], "0xabc");
        assert!(!labels.contains_key(POOL));
        let spec = pod.spec.unwrap();
        let names: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web", "prosody", "jicofo", "jvb"]);
        let jvb = &spec.containers[3];
        let requests = jvb.resources.as_ref().unwrap().requests.as_ref().unwrap();
        assert_eq!(requests["cpu"], Quantity("1000m".into()));
        assert_eq!(requests["memory"], Quantity("1380Mi".into()));
        let prosody_env = spec.containers[1].env.as_ref().unwrap();
        let secret = prosody_env.iter().find(|e| e.name == "JWT_APP_SECRET").unwrap();
        assert_eq!(secret.value, None, "the JWT secret comes from a Secret, never the pod spec");
        assert_eq!(secret.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().name, "jitsi-jwt");
        assert_eq!(spec.automount_service_account_token, Some(false));

        let warm = super::pod(&PodPlan { agreement: None, ..plan });
        assert_eq!(warm.metadata.labels.as_ref().unwrap()[POOL], "warm");
        assert!(!warm.metadata.labels.unwrap().contains_key(AGREEMENT));
    }

    #[test]
    fn selectors_name_only_this_owners_objects() {
        let owner = Owner { chain_id: 1, contract: "0xabc".into() };
        assert_eq!(
            owner.selector(AGREEMENT),
            "app.kubernetes.io/managed-by=conference-backend,conference.escrow/chain=1,\
             conference.escrow/contract=0xabc,conference.escrow/agreement"
        );
    }
}
