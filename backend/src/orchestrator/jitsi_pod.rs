//! What one conference is on Kubernetes: a Pod running Jitsi Meet's four containers (web, prosody,
//! jicofo, jvb), a UDP Service for its media made before it, and, once an agreement has it, a web
//! Service and an Ingress; built here as plain values so that every field can be read and tested
//! without a cluster. Each setting says which upstream file it follows: docker-jitsi-meet at the
//! images' tag (`stable-9955`: `env.example` and each image's `rootfs/defaults`), the community Helm
//! chart (jitsi-contrib/jitsi-helm: `values.yaml`, `docs/guides/exposing.md`) and lib-jitsi-meet's
//! `doc/tokens.md`.
//!
//! ## Exposure
//! Participants reach a conference pod `P` on two paths, configured per cluster (`clusters.rs`):
//! - web and signalling (TCP): `https://P.<domain>/`, an Ingress with the cluster's wildcard
//!   certificate in front of the web container's plain HTTP (`DISABLE_HTTPS=1`), whose nginx proxies
//!   BOSH and the XMPP websocket to prosody on `127.0.0.1:5280`; `PUBLIC_URL` is that address, so
//!   the generated `config.js` points the browser there;
//! - media (UDP): the Service `P-media`, a load balancer or a node port of its own, created and its
//!   address read before the pod, which advertises it (`JVB_ADVERTISE_IPS`, `JVB_PORT`).
//!
//! The host is per pod, not per agreement, so a warm pod knows it before it is handed over; it is
//! also the audience of the pod's join tokens (`JWT_ACCEPTED_AUDIENCES`): a token for one conference
//! is refused by every other.
//!
//! ## Sizing
//! The videobridge (jvb) does the work: it forwards each participant's video to every other one, up
//! to `LAST_N` videos per receiver, so it forwards `n × min(n − 1, LAST_N)` streams for `n`
//! participants, and its CPU grows with those streams times their bitrate. Jitsi's own load tests
//! saturate one core near 18 participants in HD (1.5 Mbit/s per stream), that is 18 × 17 = 306 HD
//! streams per core; the model scales that by the quality's bitrate. Its Java heap grows with the
//! streams' buffers; the container holds the heap plus what a JVM uses beside it. The pod's bandwidth
//! annotations (honoured by the CNI bandwidth plugin) are the forwarded streams times their bitrate
//! out, and every participant's simulcast layers (≈ 1.5 × the top layer) in. The other three
//! containers are small and fixed.

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::{
    api::{
        core::v1::{
            Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Pod, PodSpec, Probe, ResourceRequirements,
            SecretKeySelector, Service, ServicePort, ServiceSpec,
        },
        networking::v1::{
            HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend,
            IngressSpec, IngressTLS, ServiceBackendPort,
        },
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
/// On a pod and its media Service: the pod's name (the Service selects the pod by it).
pub const POD: &str = "conference.escrow/pod";
/// On a media Service: `media`.
pub const ROLE: &str = "conference.escrow/role";
/// Annotations: what the pod was sized for.
pub const PARTICIPANTS: &str = "conference.escrow/participants";
pub const STREAM_KBPS: &str = "conference.escrow/stream-kbps";
/// Annotations: the pod's public host, and the media address its videobridge advertises.
pub const HOST: &str = "conference.escrow/host";
pub const MEDIA: &str = "conference.escrow/media";

/// The most videos a participant receives (Jitsi's `channelLastN`).
pub const LAST_N: u64 = 20;
/// HD streams one core of the videobridge forwards (18 participants × 17 streams each).
const HD_STREAMS_PER_CORE: u64 = 18 * 17;
const HD_KBPS: u64 = 1_500;
/// The web container's plain HTTP, behind the Ingress (`DISABLE_HTTPS=1`).
pub const WEB_PORT: i32 = 80;
/// The port of the media Service itself; with a node port, the videobridge listens on that instead.
pub const JVB_PORT: i32 = 10_000;
/// The videobridge's private REST interface (health, statistics), reached by the monitor only.
pub const JVB_REST_PORT: i32 = 8080;
/// prosody's HTTP (BOSH, websocket, `/health`) and jicofo's REST interface (`/about/health`).
const PROSODY_HTTP_PORT: i32 = 5280;
const JICOFO_REST_PORT: i32 = 8888;
/// What a JVM takes beside its heap (metaspace, code cache, thread stacks, GC and direct buffers),
/// per Java container: the heap is set explicitly, and the container's limit must hold both.
const JVM_NON_HEAP_MIB: u64 = 512;
/// jicofo's heap: upstream's default is 3 GiB (`env.example`: `JICOFO_MAX_MEMORY=3072m`) for a
/// jicofo serving a whole deployment; this one focuses a single conference on a single bridge.
const JICOFO_HEAP_MIB: u64 = 256;

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

    /// The videobridge's Java heap (`VIDEOBRIDGE_MAX_MEMORY`): a base and the streams' buffers.
    pub fn jvb_heap_mib(&self) -> u64 {
        512 + 2 * self.streams()
    }

    /// The videobridge container's memory, request and limit: its heap and the JVM's non-heap.
    pub fn jvb_memory_mib(&self) -> u64 {
        self.jvb_heap_mib() + JVM_NON_HEAP_MIB
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

/// The small containers' (millicores, MiB), whatever the conference's size. jicofo's memory is its
/// heap plus the JVM's non-heap: a 256 MiB heap in 384 MiB left the JVM too little beside it.
const WEB: (u64, u64) = (100, 128);
const PROSODY: (u64, u64) = (100, 128);
const JICOFO: (u64, u64) = (100, JICOFO_HEAP_MIB + JVM_NON_HEAP_MIB);

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
        }
    }
}

/// A TURN server (coturn with `use-auth-secret`) that prosody hands to the clients (XEP-0215;
/// docker-jitsi-meet `prosody/rootfs/defaults/prosody.cfg.lua`: `TURN_HOST`, `TURN_PORT`,
/// `TURN_TRANSPORT`, `TURN_CREDENTIALS`), per cluster in the clusters file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnServer {
    pub host: String,
    /// 443 by default, as upstream's: the port most firewalls let out.
    #[serde(default = "TurnServer::default_port")]
    pub port: u16,
    /// `udp` and/or `tcp` (upstream's default is `tcp` alone).
    #[serde(default = "TurnServer::default_transports")]
    pub transports: Vec<String>,
    /// The Secret (in the conference namespace) and key holding coturn's `static-auth-secret`.
    pub secret_name: String,
    #[serde(default = "TurnServer::default_secret_key")]
    pub secret_key: String,
}

impl TurnServer {
    fn default_port() -> u16 {
        443
    }

    fn default_transports() -> Vec<String> {
        vec!["udp".into(), "tcp".into()]
    }

    fn default_secret_key() -> String {
        "static-auth-secret".into()
    }
}

/// Where participants' UDP reaches a pod's videobridge: known before the pod is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaAddress {
    pub addresses: Vec<IpAddr>,
    /// The port participants send to, which the videobridge also listens on (`JVB_PORT`).
    pub port: i32,
}

impl MediaAddress {
    /// `JVB_ADVERTISE_IPS`'s form: the addresses, comma separated.
    pub fn advertised(&self) -> String {
        self.addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",")
    }
}

impl std::fmt::Display for MediaAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} port {}/udp", self.advertised(), self.port)
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
    /// The host participants reach this pod at (`<pod>.<domain>`).
    pub host: String,
    /// Its media Service's address.
    pub media: MediaAddress,
    pub turn: Option<&'a TurnServer>,
}

/// The name of an agreement's web Service and Ingress, and of its pod when started cold.
pub fn conference_name(agreement: u64) -> String {
    format!("conference-{agreement}")
}

/// The name of a pod's media Service.
pub fn media_service_name(pod: &str) -> String {
    format!("{pod}-media")
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
    annotations.insert(HOST.into(), plan.host.clone());
    annotations.insert(MEDIA.into(), plan.media.to_string());
    let mut labels = labels(plan.owner, plan.agreement);
    labels.insert(POD.into(), plan.name.clone());

    let (jicofo_password, jvb_password) = &plan.internal_passwords;
    let public_url = format!("https://{}", plan.host);
    let xmpp = [
        // The XMPP domains as the images' defaults have them (each `rootfs/defaults/*`).
        ("XMPP_DOMAIN", "meet.jitsi"),
        ("XMPP_AUTH_DOMAIN", "auth.meet.jitsi"),
        ("XMPP_MUC_DOMAIN", "muc.meet.jitsi"),
        ("XMPP_INTERNAL_MUC_DOMAIN", "internal-muc.meet.jitsi"),
        ("XMPP_GUEST_DOMAIN", "guest.meet.jitsi"),
        // The four containers share the pod's network. An address, not `localhost`: the web image's
        // nginx resolves a `proxy_pass` host through its `resolver` (the cluster DNS, found by
        // web/rootfs/etc/cont-init.d/10-config), which has no answer for `localhost`
        // (web/rootfs/defaults/meet.conf: `proxy_pass {{ $XMPP_BOSH_URL_BASE }}/http-bind?...`).
        ("XMPP_SERVER", "127.0.0.1"),
        ("XMPP_BOSH_URL_BASE", "http://127.0.0.1:5280"),
        ("TZ", "UTC"),
    ];
    // JWT authentication, guests off (env.example, "Authentication configuration").
    let auth = [("ENABLE_AUTH", "1"), ("AUTH_TYPE", "jwt"), ("ENABLE_GUESTS", "0")];
    let env = |pairs: &[(&str, &str)]| -> Vec<EnvVar> {
        xmpp.iter().chain(pairs).map(|(name, value)| plain(name, value)).collect()
    };

    let mut web = env(&auth);
    web.extend([
        // Required by upstream (env.example: "Public URL for the web service (required)"): the
        // generated config.js points BOSH and the XMPP websocket at it
        // (web/rootfs/defaults/system-config.js: `config.bosh = 'https://{{ $PUBLIC_URL_DOMAIN }}/...'`).
        plain("PUBLIC_URL", &public_url),
        // TLS ends at the Ingress, as the chart's `web.ingress` does; nginx serves plain HTTP on 80
        // (web/rootfs/defaults/default: no 443 server when DISABLE_HTTPS), no self-signed certificate
        // (web/rootfs/etc/cont-init.d/10-config makes one only without DISABLE_HTTPS).
        plain("DISABLE_HTTPS", "1"),
        // Media through the bridge even for two (web/rootfs/defaults/settings-config.js,
        // `config.p2p.enabled`): a peer-to-peer call hides a broken media path, bypasses what the
        // customer pays for and what the monitor measures, and tells each peer the other's address.
        plain("ENABLE_P2P", "0"),
    ]);

    let mut prosody = env(&auth);
    prosody.extend([
        // prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua: `app_id`, `app_secret`,
        // `asap_accepted_issuers`, `asap_accepted_audiences` (checked by the token plugin's
        // `verify_audience`). The audience is this pod's host, so a token is good on one pod only.
        plain("JWT_APP_ID", plan.app_id),
        plain("JWT_ACCEPTED_ISSUERS", plan.app_id),
        plain("JWT_ACCEPTED_AUDIENCES", &plan.host),
        secret_env("JWT_APP_SECRET", &plan.jitsi.jwt_secret_name, &plan.jitsi.jwt_secret_key),
        // The customer as the only moderator: `token_affiliation` (jitsi-contrib/prosody-plugins,
        // shipped in the prosody image at /prosody-plugins-contrib, prosody/Dockerfile) makes a
        // token with `context.user.moderator: true` an owner and every other token holder a
        // member; added to the conference MUC by jitsi-meet.cfg.lua's `XMPP_MUC_MODULES`.
        plain("XMPP_MUC_MODULES", "token_affiliation"),
        plain("JICOFO_AUTH_PASSWORD", jicofo_password),
        plain("JVB_AUTH_PASSWORD", jvb_password),
    ]);
    if let Some(turn) = plan.turn {
        // prosody/rootfs/defaults/prosody.cfg.lua: `external_services` (XEP-0215) from these, with
        // short-lived credentials derived from coturn's shared secret (`TURN_CREDENTIALS`).
        prosody.extend([
            plain("TURN_HOST", &turn.host),
            plain("TURN_PORT", &turn.port.to_string()),
            plain("TURN_TRANSPORT", &turn.transports.join(",")),
            secret_env("TURN_CREDENTIALS", &turn.secret_name, &turn.secret_key),
        ]);
    }

    let mut jicofo = env(&[]);
    jicofo.extend([
        plain("JICOFO_AUTH_PASSWORD", jicofo_password),
        // jicofo/rootfs/defaults/jicofo.conf: with its own authentication on (it follows ENABLE_AUTH
        // unless told), jicofo makes every authenticated participant, so every token holder, an
        // owner; and `enable-auto-owner` hands ownership to someone when the owner leaves. Both off,
        // as token_affiliation's README says: roles come from the tokens alone. prosody still
        // refuses anyone without a valid token.
        plain("JICOFO_ENABLE_AUTH", "0"),
        plain("ENABLE_AUTO_OWNER", "0"),
        // Its REST interface on 8888 (jicofo.conf `rest`), for `/about/health`
        // (jicofo/rootfs/usr/local/bin/healthcheck.sh), which also fails while no bridge is there.
        plain("JICOFO_ENABLE_REST", "1"),
        plain("JICOFO_MAX_MEMORY", &format!("{JICOFO_HEAP_MIB}m")),
    ]);

    let mut jvb = env(&[]);
    jvb.extend([
        plain("JVB_AUTH_PASSWORD", jvb_password),
        // jvb/rootfs/defaults/jvb.conf: `ice.udp.port` and ice4j's static mappings from the
        // advertised addresses. Without them the bridge offers its pod address and media fails
        // (the chart's docs/guides/exposing.md: "Signalling succeeds and media fails").
        plain("JVB_PORT", &plan.media.port.to_string()),
        plain("JVB_ADVERTISE_IPS", &plan.media.advertised()),
        // The address is known; STUN (to a public server by default) would only add the node's
        // egress address, which reaches nothing (the chart's `jvb.disableStun`, values.yaml).
        plain("JVB_DISABLE_STUN", "1"),
        // Pod addresses reach nobody outside the cluster; offering them leaks them to participants.
        plain("JVB_ADVERTISE_PRIVATE_CANDIDATES", "0"),
        // `/colibri/stats` answers only with the COLIBRI REST API on (jitsi-videobridge RestConfig:
        // `videobridge.apis.rest.enabled`; jvb.conf `apis.rest.enabled = COLIBRI_REST_ENABLED`);
        // the monitor's probe reads it on 8080, which only the backend may reach (NetworkPolicy).
        plain("COLIBRI_REST_ENABLED", "1"),
        // The Java heap; the container holds it and the JVM's non-heap (upstream's default heap is
        // 3 GiB, env.example `VIDEOBRIDGE_MAX_MEMORY`, for a bridge shared by many conferences).
        plain("VIDEOBRIDGE_MAX_MEMORY", &format!("{}m", sizing.jvb_heap_mib())),
    ]);

    let containers = vec![
        // Probes as the chart's values.yaml (`web.readinessProbe`: GET / on http).
        container("web", &plan.jitsi.web_image, web, WEB, &[("http", WEB_PORT, "TCP")], CpuLimit::Twice)
            .with_health(WEB_PORT, "/", 3),
        // prosody/rootfs/usr/local/bin/healthcheck.sh: GET :5280/health (mod_http_health).
        container(
            "prosody",
            &plan.jitsi.prosody_image,
            prosody,
            PROSODY,
            &[("xmpp-client", 5222, "TCP"), ("http", PROSODY_HTTP_PORT, "TCP")],
            CpuLimit::Twice,
        )
        .with_health(PROSODY_HTTP_PORT, "/health", 3),
        // jicofo/rootfs/usr/local/bin/healthcheck.sh: GET :8888/about/health. It also fails while
        // the bridge is missing, so a restart waits a minute for the bridge's own to act first.
        container(
            "jicofo",
            &plan.jitsi.jicofo_image,
            jicofo,
            JICOFO,
            &[("rest", JICOFO_REST_PORT, "TCP")],
            CpuLimit::Twice,
        )
        .with_health(JICOFO_REST_PORT, "/about/health", 6),
        // jvb/rootfs/usr/local/bin/healthcheck.sh: GET :8080/about/health. No CPU limit: a quota
        // throttles forwarding in bursts (key frames, layer switches) and delays every stream; the
        // request is what placement counts, and memory is limited as ever.
        container(
            "jvb",
            &plan.jitsi.jvb_image,
            jvb,
            (sizing.jvb_millicores(), sizing.jvb_memory_mib()),
            &[("jvb", plan.media.port, "UDP"), ("jvb-rest", JVB_REST_PORT, "TCP")],
            CpuLimit::None,
        )
        .with_health(JVB_REST_PORT, "/about/health", 3),
    ];

    Pod {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            labels: Some(labels),
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

/// The media Service of pod `pod`, created before the pod: UDP only, selecting the pod by name, its
/// target the container port named `jvb` (10000 behind a load balancer; the node port itself with
/// `NodePort`, which the API server assigns when the Service is created).
pub fn media_service(owner: &Owner, pod: &str, service_type: &str, annotations: &BTreeMap<String, String>) -> Service {
    let mut selector = owner.labels();
    selector.insert(POD.into(), pod.into());
    let mut labels = selector.clone();
    labels.insert(ROLE.into(), "media".into());
    Service {
        metadata: ObjectMeta {
            name: Some(media_service_name(pod)),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(service_type.into()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("jvb".into()),
                port: JVB_PORT,
                protocol: Some("UDP".into()),
                target_port: Some(IntOrString::String("jvb".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// The agreement's web Service: the Ingress's backend, in the cluster only.
pub fn web_service(owner: &Owner, agreement: u64) -> Service {
    let mut selector = owner.labels();
    selector.insert(AGREEMENT.into(), agreement.to_string());
    Service {
        metadata: ObjectMeta {
            name: Some(conference_name(agreement)),
            labels: Some(labels(owner, Some(agreement))),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: WEB_PORT,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::String("http".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// How a cluster's Ingresses look: the certificate, the class and any annotations.
#[derive(Debug, Clone, Copy)]
pub struct IngressStyle<'a> {
    pub tls_secret: &'a str,
    pub class: Option<&'a str>,
    pub annotations: &'a BTreeMap<String, String>,
}

/// The agreement's Ingress: `https://<host>/` (TLS with the wildcard certificate) to its web Service.
pub fn ingress(owner: &Owner, agreement: u64, host: &str, style: IngressStyle) -> Ingress {
    let name = conference_name(agreement);
    Ingress {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels(owner, Some(agreement))),
            annotations: (!style.annotations.is_empty()).then(|| style.annotations.clone()),
            ..Default::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: style.class.map(str::to_owned),
            tls: Some(vec![IngressTLS {
                hosts: Some(vec![host.to_owned()]),
                secret_name: Some(style.tls_secret.to_owned()),
            }]),
            rules: Some(vec![IngressRule {
                host: Some(host.to_owned()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name,
                                port: Some(ServiceBackendPort { number: Some(WEB_PORT), name: None }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

/// A variable from a Secret of the conference namespace: its value is never in the pod spec.
fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: secret.into(), key: key.into(), optional: Some(false) }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether a container's CPU is limited (to twice its request) or only requested.
#[derive(Debug, Clone, Copy)]
enum CpuLimit {
    Twice,
    None,
}

fn container(
    name: &str,
    image: &str,
    env: Vec<EnvVar>,
    (millicores, mib): (u64, u64),
    ports: &[(&str, i32, &str)],
    cpu_limit: CpuLimit,
) -> Container {
    let requests = BTreeMap::from([
        ("cpu".to_owned(), Quantity(format!("{millicores}m"))),
        ("memory".to_owned(), Quantity(format!("{mib}Mi"))),
    ]);
    // Memory is not compressible, so its limit is its request.
    let mut limits = BTreeMap::from([("memory".to_owned(), Quantity(format!("{mib}Mi")))]);
    if let CpuLimit::Twice = cpu_limit {
        limits.insert("cpu".to_owned(), Quantity(format!("{}m", millicores * 2)));
    }
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

trait WithHealth {
    /// Startup, readiness and liveness on one health URL: up to 3 minutes to start (images pulled,
    /// a JVM warmed), ready within 5 s of answering, restarted after `liveness_failures` failed
    /// checks 10 s apart.
    fn with_health(self, port: i32, path: &str, liveness_failures: i32) -> Self;
}

impl WithHealth for Container {
    fn with_health(mut self, port: i32, path: &str, liveness_failures: i32) -> Self {
        let probe = |period: i32, failures: i32| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port),
                ..Default::default()
            }),
            period_seconds: Some(period),
            timeout_seconds: Some(2),
            failure_threshold: Some(failures),
            ..Default::default()
        };
        self.startup_probe = Some(probe(5, 36));
        self.readiness_probe = Some(probe(5, 2));
        self.liveness_probe = Some(probe(10, liveness_failures));
        self
    }
}

#[cfg(test)]
mod tests {
    //! Every object field by field, for each exposure mode. The comment beside each expected value
    //! names the upstream file the setting follows (docker-jitsi-meet at `stable-9955` unless said).

    use serde_json::{Value, json};

    use super::*;

    fn hd(participants: u64) -> Sizing {
        Sizing { participants, stream_kbps: HD_KBPS }
    }

    const OWNER: fn() -> Owner = || Owner { chain_id: 31337, contract: "0xabc".into() };

    fn plan<'a>(
        owner: &'a Owner,
        jitsi: &'a JitsiSettings,
        media: MediaAddress,
        turn: Option<&'a TurnServer>,
    ) -> PodPlan<'a> {
        PodPlan {
            name: conference_name(7),
            agreement: Some(7),
            owner,
            sizing: hd(18),
            jitsi,
            app_id: "conference",
            internal_passwords: ("jicofo-pw".into(), "jvb-pw".into()),
            grace_period_secs: 30,
            annotations: BTreeMap::new(),
            host: "conference-7.meet-eu.example.org".into(),
            media,
            turn,
        }
    }

    fn load_balanced() -> MediaAddress {
        MediaAddress { addresses: vec!["203.0.113.7".parse().unwrap()], port: JVB_PORT }
    }

    /// A container's environment as name → value (or the Secret it comes from).
    fn env(pod: &Pod, container: &str) -> BTreeMap<String, Value> {
        let c = pod.spec.as_ref().unwrap().containers.iter().find(|c| c.name == container).unwrap();
        c.env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| {
                let value = match (&e.value, &e.value_from) {
                    (Some(v), _) => json!(v),
                    (None, Some(from)) => {
                        let r = from.secret_key_ref.as_ref().unwrap();
                        json!({"secret": r.name, "key": r.key})
                    }
                    _ => Value::Null,
                };
                (e.name.clone(), value)
            })
            .collect()
    }

    fn container(pod: &Pod, name: &str) -> Value {
        let c = pod.spec.as_ref().unwrap().containers.iter().find(|c| c.name == name).unwrap();
        serde_json::to_value(c).unwrap()
    }

    /// The variables every container gets.
    fn xmpp() -> Value {
        json!({
            // The images' own defaults (e.g. web/rootfs/defaults/system-config.js), written out.
            "XMPP_DOMAIN": "meet.jitsi",
            "XMPP_AUTH_DOMAIN": "auth.meet.jitsi",
            "XMPP_MUC_DOMAIN": "muc.meet.jitsi",
            "XMPP_INTERNAL_MUC_DOMAIN": "internal-muc.meet.jitsi",
            "XMPP_GUEST_DOMAIN": "guest.meet.jitsi",
            // 127.0.0.1, not localhost: web/rootfs/defaults/meet.conf proxies with variables, so
            // nginx resolves the host through the cluster DNS (web/rootfs/etc/cont-init.d/10-config).
            "XMPP_SERVER": "127.0.0.1",
            "XMPP_BOSH_URL_BASE": "http://127.0.0.1:5280",
            "TZ": "UTC",
        })
    }

    fn with(base: Value, more: Value) -> Value {
        let mut all = base.as_object().unwrap().clone();
        all.extend(more.as_object().unwrap().clone());
        Value::Object(all)
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
        // The heap grows with the streams; the container holds it and 512 MiB beside it.
        assert_eq!(hd(18).jvb_heap_mib(), 512 + 612);
        assert_eq!(hd(18).jvb_memory_mib(), 1_124 + 512);
        assert!(hd(20).covers(&hd(10)) && !hd(10).covers(&hd(20)));
    }

    #[test]
    fn the_pod_behind_a_load_balancer_field_by_field() {
        let (owner, jitsi) = (OWNER(), JitsiSettings::default());
        let pod = pod(&plan(&owner, &jitsi, load_balanced(), None));

        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(
            serde_json::to_value(labels).unwrap(),
            json!({
                "app.kubernetes.io/managed-by": "conference-backend",
                "app.kubernetes.io/name": "jitsi-meet",
                "conference.escrow/agreement": "7",
                "conference.escrow/chain": "31337",
                "conference.escrow/contract": "0xabc",
                // What its media Service selects it by.
                "conference.escrow/pod": "conference-7",
            })
        );
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[HOST], "conference-7.meet-eu.example.org");
        assert_eq!(annotations[MEDIA], "203.0.113.7 port 10000/udp");

        let auth = json!({"ENABLE_AUTH": "1", "AUTH_TYPE": "jwt", "ENABLE_GUESTS": "0"}); // env.example
        assert_eq!(
            serde_json::to_value(env(&pod, "web")).unwrap(),
            with(
                with(xmpp(), auth.clone()),
                json!({
                    // env.example: "Public URL for the web service (required)"; system-config.js builds
                    // config.bosh and config.websocket from it.
                    "PUBLIC_URL": "https://conference-7.meet-eu.example.org",
                    // The chart's web.ingress: TLS at the Ingress, plain HTTP in the pod
                    // (web/rootfs/defaults/default serves 443 only without DISABLE_HTTPS).
                    "DISABLE_HTTPS": "1",
                    // web/rootfs/defaults/settings-config.js `config.p2p.enabled`: media via the bridge.
                    "ENABLE_P2P": "0",
                })
            )
        );
        assert_eq!(
            serde_json::to_value(env(&pod, "prosody")).unwrap(),
            with(
                with(xmpp(), auth),
                json!({
                    // prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua: app_id, app_secret,
                    // asap_accepted_issuers, asap_accepted_audiences (this pod's host only).
                    "JWT_APP_ID": "conference",
                    "JWT_ACCEPTED_ISSUERS": "conference",
                    "JWT_ACCEPTED_AUDIENCES": "conference-7.meet-eu.example.org",
                    "JWT_APP_SECRET": {"secret": "jitsi-jwt", "key": "app-secret"},
                    // jitsi-meet.cfg.lua XMPP_MUC_MODULES; the module from prosody/Dockerfile's
                    // jitsi-contrib/prosody-plugins (token_affiliation/README.md).
                    "XMPP_MUC_MODULES": "token_affiliation",
                    "JICOFO_AUTH_PASSWORD": "jicofo-pw",
                    "JVB_AUTH_PASSWORD": "jvb-pw",
                })
            )
        );
        assert_eq!(
            serde_json::to_value(env(&pod, "jicofo")).unwrap(),
            with(
                xmpp(),
                json!({
                    "JICOFO_AUTH_PASSWORD": "jicofo-pw",
                    // jicofo/rootfs/defaults/jicofo.conf: no `authentication` block (which would make
                    // every token holder an owner), `conference.enable-auto-owner = false`.
                    "JICOFO_ENABLE_AUTH": "0",
                    "ENABLE_AUTO_OWNER": "0",
                    // jicofo.conf `rest` (for /about/health, jicofo/rootfs/usr/local/bin/healthcheck.sh).
                    "JICOFO_ENABLE_REST": "1",
                    // env.example JICOFO_MAX_MEMORY (upstream 3072m for a whole deployment).
                    "JICOFO_MAX_MEMORY": "256m",
                })
            )
        );
        assert_eq!(
            serde_json::to_value(env(&pod, "jvb")).unwrap(),
            with(
                xmpp(),
                json!({
                    "JVB_AUTH_PASSWORD": "jvb-pw",
                    // jvb/rootfs/defaults/jvb.conf `ice.udp.port` and ice4j `static-mappings`;
                    // env.example JVB_ADVERTISE_IPS; the load balancer's address, read before the pod.
                    "JVB_PORT": "10000",
                    "JVB_ADVERTISE_IPS": "203.0.113.7",
                    // jvb.conf STUN and `advertise-private-candidates`; the chart's jvb.disableStun.
                    "JVB_DISABLE_STUN": "1",
                    "JVB_ADVERTISE_PRIVATE_CANDIDATES": "0",
                    // jvb.conf `apis.rest.enabled`: /colibri/stats for the monitor's probe.
                    "COLIBRI_REST_ENABLED": "1",
                    // env.example VIDEOBRIDGE_MAX_MEMORY: the heap for 306 streams.
                    "VIDEOBRIDGE_MAX_MEMORY": "1124m",
                })
            )
        );

        // Probes of all four on the images' own health checks (each rootfs/usr/local/bin/healthcheck.sh;
        // web as the chart's values.yaml web.readinessProbe).
        for (name, port, path, liveness_failures) in [
            ("web", 80, "/", 3),
            ("prosody", 5280, "/health", 3),
            ("jicofo", 8888, "/about/health", 6),
            ("jvb", 8080, "/about/health", 3),
        ] {
            let c = container(&pod, name);
            let get = json!({"path": path, "port": port});
            let probe = |period: i32, failures: i32| json!({"httpGet": get, "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": failures});
            assert_eq!(c["startupProbe"], probe(5, 36), "{name}");
            assert_eq!(c["readinessProbe"], probe(5, 2), "{name}");
            assert_eq!(c["livenessProbe"], probe(10, liveness_failures), "{name}");
        }

        let ports = |name: &str| container(&pod, name)["ports"].clone();
        assert_eq!(
            ports("web"),
            json!([{"name": "http", "containerPort": 80, "protocol": "TCP"}]),
            "no 443 in the pod"
        );
        assert_eq!(
            ports("prosody"),
            json!([{"name": "xmpp-client", "containerPort": 5222, "protocol": "TCP"}, {"name": "http", "containerPort": 5280, "protocol": "TCP"}])
        );
        assert_eq!(ports("jicofo"), json!([{"name": "rest", "containerPort": 8888, "protocol": "TCP"}]));
        assert_eq!(
            ports("jvb"),
            json!([{"name": "jvb", "containerPort": 10000, "protocol": "UDP"}, {"name": "jvb-rest", "containerPort": 8080, "protocol": "TCP"}])
        );

        let resources = |name: &str| container(&pod, name)["resources"].clone();
        assert_eq!(
            resources("jvb"),
            json!({"requests": {"cpu": "1000m", "memory": "1636Mi"}, "limits": {"memory": "1636Mi"}}),
            "no CPU limit on the videobridge: a quota throttles forwarding"
        );
        assert_eq!(
            resources("jicofo"),
            json!({"requests": {"cpu": "100m", "memory": "768Mi"}, "limits": {"cpu": "200m", "memory": "768Mi"}}),
            "a 256 MiB heap and 512 MiB for the JVM beside it"
        );
        assert_eq!(
            resources("web"),
            json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}})
        );

        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.enable_service_links, Some(false));
        // Pod Security `baseline`: nothing on the host.
        assert_eq!((spec.host_network, spec.host_pid, spec.host_ipc), (None, None, None));
        assert!(spec.containers.iter().flat_map(|c| c.ports.iter().flatten()).all(|p| p.host_port.is_none()));
        for name in ["web", "prosody", "jicofo", "jvb"] {
            assert_eq!(container(&pod, name)["image"], format!("docker.io/jitsi/{name}:stable-9955"));
        }
    }

    #[test]
    fn the_pod_on_a_node_port_listens_on_it_and_advertises_the_nodes() {
        let (owner, jitsi) = (OWNER(), JitsiSettings::default());
        let media = MediaAddress {
            addresses: vec!["203.0.113.10".parse().unwrap(), "2001:db8::10".parse().unwrap()],
            port: 31_234,
        };
        let pod = pod(&plan(&owner, &jitsi, media, None));
        let jvb = env(&pod, "jvb");
        // The chart's docs/guides/exposing.md, Option 2: JVB's UDP port equal to the node port, the
        // nodes' public addresses advertised.
        assert_eq!(jvb["JVB_PORT"], "31234");
        assert_eq!(jvb["JVB_ADVERTISE_IPS"], "203.0.113.10,2001:db8::10");
        assert_eq!(
            container(&pod, "jvb")["ports"][0],
            json!({"name": "jvb", "containerPort": 31234, "protocol": "UDP"})
        );
    }

    #[test]
    fn a_turn_server_is_handed_to_the_clients_by_prosody() {
        let (owner, jitsi) = (OWNER(), JitsiSettings::default());
        let turn = TurnServer {
            host: "turn-eu.example.org".into(),
            port: 443,
            transports: vec!["udp".into(), "tcp".into()],
            secret_name: "coturn".into(),
            secret_key: "static-auth-secret".into(),
        };
        let pod = pod(&plan(&owner, &jitsi, load_balanced(), Some(&turn)));
        let prosody = env(&pod, "prosody");
        // prosody/rootfs/defaults/prosody.cfg.lua: external_services from TURN_HOST, TURN_PORT,
        // TURN_TRANSPORT, and `external_service_secret` from TURN_CREDENTIALS (from a Secret).
        assert_eq!(prosody["TURN_HOST"], "turn-eu.example.org");
        assert_eq!(prosody["TURN_PORT"], "443");
        assert_eq!(prosody["TURN_TRANSPORT"], "udp,tcp");
        assert_eq!(prosody["TURN_CREDENTIALS"], json!({"secret": "coturn", "key": "static-auth-secret"}));
        assert!(!env(&pod, "web").contains_key("TURN_HOST"), "only prosody hands TURN out");
    }

    #[test]
    fn a_warm_pod_has_no_agreement_but_its_own_host_and_media_address() {
        let (owner, jitsi) = (OWNER(), JitsiSettings::default());
        let warm = pod(&PodPlan {
            name: "conference-warm-0a1b2c3d".into(),
            agreement: None,
            host: "conference-warm-0a1b2c3d.meet-eu.example.org".into(),
            ..plan(&owner, &jitsi, load_balanced(), None)
        });
        let labels = warm.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[POOL], "warm");
        assert_eq!(labels[POD], "conference-warm-0a1b2c3d");
        assert!(!labels.contains_key(AGREEMENT));
        assert_eq!(env(&warm, "web")["PUBLIC_URL"], "https://conference-warm-0a1b2c3d.meet-eu.example.org");
        assert_eq!(env(&warm, "jvb")["JVB_ADVERTISE_IPS"], "203.0.113.7");
    }

    #[test]
    fn the_media_service_is_udp_alone_and_selects_its_pod_by_name() {
        let owner = OWNER();
        let annotations = BTreeMap::from([("service.beta.kubernetes.io/aws-load-balancer-type".into(), "nlb".into())]);
        for kind in ["LoadBalancer", "NodePort"] {
            let service = media_service(&owner, "conference-warm-0a1b2c3d", kind, &annotations);
            assert_eq!(
                serde_json::to_value(&service).unwrap(),
                json!({
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": "conference-warm-0a1b2c3d-media",
                        "labels": {
                            "app.kubernetes.io/managed-by": "conference-backend",
                            "conference.escrow/chain": "31337",
                            "conference.escrow/contract": "0xabc",
                            "conference.escrow/pod": "conference-warm-0a1b2c3d",
                            "conference.escrow/role": "media",
                        },
                        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
                    },
                    "spec": {
                        // The chart's jvb.service: a Service for the UDP alone (no mixed protocols);
                        // its type per cluster.
                        "type": kind,
                        "selector": {
                            "app.kubernetes.io/managed-by": "conference-backend",
                            "conference.escrow/chain": "31337",
                            "conference.escrow/contract": "0xabc",
                            "conference.escrow/pod": "conference-warm-0a1b2c3d",
                        },
                        // To the container port named jvb: 10000, or the node port with NodePort.
                        "ports": [{"name": "jvb", "port": 10000, "protocol": "UDP", "targetPort": "jvb"}],
                    },
                }),
                "{kind}"
            );
        }
    }

    #[test]
    fn the_web_service_and_ingress_serve_the_pods_host_with_the_wildcard_certificate() {
        let owner = OWNER();
        let web = web_service(&owner, 7);
        let spec = serde_json::to_value(web.spec.unwrap()).unwrap();
        assert_eq!(spec["type"], "ClusterIP", "behind the Ingress: no address of its own outside");
        assert_eq!(spec["ports"], json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]));
        assert_eq!(spec["selector"]["conference.escrow/agreement"], "7");

        let annotations = BTreeMap::from([("nginx.ingress.kubernetes.io/proxy-read-timeout".into(), "3600".into())]);
        let style =
            IngressStyle { tls_secret: "meet-eu-wildcard-tls", class: Some("nginx"), annotations: &annotations };
        let ingress = ingress(&owner, 7, "conference-warm-0a1b2c3d.meet-eu.example.org", style);
        assert_eq!(ingress.metadata.name.as_deref(), Some("conference-7"));
        assert_eq!(ingress.metadata.labels.as_ref().unwrap()[AGREEMENT], "7");
        assert_eq!(
            serde_json::to_value(ingress.metadata.annotations).unwrap(),
            json!({"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"})
        );
        // The chart's web.ingress (values.yaml: hosts, paths "/", tls with a secretName).
        assert_eq!(
            serde_json::to_value(ingress.spec.unwrap()).unwrap(),
            json!({
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["conference-warm-0a1b2c3d.meet-eu.example.org"], "secretName": "meet-eu-wildcard-tls"}],
                "rules": [{
                    "host": "conference-warm-0a1b2c3d.meet-eu.example.org",
                    "http": {"paths": [{
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "conference-7", "port": {"number": 80}}},
                    }]},
                }],
            })
        );
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
