//! A real Kubernetes test cluster for the orchestrator's tests, one per test, several at once.
//!
//! What is real: etcd and kube-apiserver 1.20.2 (built from Debian's source package by
//! `anvil/kube-apiserver.sh`, `make kube`), so authentication (static bearer tokens), RBAC,
//! admission, validation, resource versions, watches, the status subresource and server-side apply
//! behave as on any cluster. What stands in: there is no scheduler, kubelet, kube-proxy or
//! controller-manager. Pods are stored but never run, so [`FakeNode`] plays the node the way kwok
//! does: it marks pods Running and Ready through the status subresource, gives each pod an address
//! of its own on loopback (127.250.0.0/16) where it answers as the pod's videobridge would on its
//! private REST interface (port 8080: `/about/health`, and `/colibri/stats` with the statistics a test
//! sets, [`KubeClusters::set_videobridge_stats`]) and, for each Service whose cluster IP is on loopback
//! (every test cluster's service range is a loopback /24), answers HTTP on each of its TCP ports as
//! Jitsi's web container would. It also plays the cloud's load balancer controller: a `LoadBalancer`
//! Service gets an address (from 198.51.100.0/24, documentation space nothing is ever sent to) after a
//! delay, and the node notes every such Service whose pod existed before the address did
//! ([`FakeNode::media_violations`]). The `default` ServiceAccount of each namespace is
//! created by [`TestCluster::start`] (the controller-manager's job), and bound service-account
//! token volumes are switched on so that pods admit without token Secrets.
//!
//! Users (static tokens): `admin` (group `system:masters`) and `backend`, which authenticates as the
//! ServiceAccount `conference-system/conference-backend` with its usual groups, so RBAC bindings to
//! that ServiceAccount apply to it without a token controller.

use std::{
    collections::{HashMap, HashSet},
    fs, io,
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdTcpListener},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use conference_backend::dev::free_loopback_port;
use futures::StreamExt;
use k8s_openapi::serde::Deserialize;
use k8s_openapi::{
    api::core::v1::{Namespace, Pod, Service, ServiceAccount},
    jiff::Timestamp,
};
use kube::{
    Client, Config, ResourceExt,
    api::{Api, DynamicObject, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    core::GroupVersionKind,
    discovery::{self, Scope},
    runtime::watcher::{self, Event},
};
use nix::{
    sys::{prctl, signal::Signal},
    unistd::Pid,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

/// The version `anvil/kube-apiserver.sh` builds.
pub const KUBERNETES_VERSION: &str = "v1.20.2";
/// The namespaces every test cluster starts with.
pub const NAMESPACES: [&str; 3] = ["conferences", "conference-system", "other"];
/// The token users of every test cluster.
pub const USERS: [&str; 2] = ["admin", "backend"];
/// The identity the `backend` user authenticates as.
pub const BACKEND_SERVICE_ACCOUNT: &str = "system:serviceaccount:conference-system:conference-backend";

/// The kube-apiserver binary: `$KUBE_APISERVER_BIN`, else where `anvil/kube-apiserver.sh` caches it.
pub fn apiserver_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("KUBE_APISERVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
                .context("neither XDG_CACHE_HOME nor HOME is set")?;
            cache.join(format!("conference-tools/kubernetes-{KUBERNETES_VERSION}/kube-apiserver"))
        }
    };
    if !path.exists() {
        bail!("{} is missing: run `make kube` (builds kube-apiserver once and caches it)", path.display());
    }
    Ok(path)
}

/// kubectl 1.20 (`kubectl kustomize`): the one `anvil/kube-apiserver.sh` caches beside the
/// apiserver, else whichever is on PATH.
pub fn kubectl_binary() -> PathBuf {
    apiserver_binary()
        .ok()
        .and_then(|apiserver| Some(apiserver.parent()?.join("kubectl")))
        .filter(|kubectl| kubectl.exists())
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// Renders a kustomization directory with [`kubectl_binary`] (`kubectl kustomize DIR`).
pub fn kustomize(dir: &Path) -> Result<String> {
    let kubectl = kubectl_binary();
    let output = Command::new(&kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .with_context(|| format!("running {} kustomize", kubectl.display()))?;
    if !output.status.success() {
        bail!("kubectl kustomize {}: {}", dir.display(), String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Applies every document of a multi-document YAML stream with `client` (server-side apply, as
/// `kubectl apply --server-side --force-conflicts` does), resolving each kind through discovery.
/// Returns the `apiVersion/kind` of the documents this server does not serve, which are skipped.
pub async fn apply_yaml(client: &Client, yaml: &str) -> Result<Vec<String>> {
    let mut skipped = vec![];
    let params = PatchParams::apply("conference-tests").force();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let object = DynamicObject::deserialize(document)?;
        let types = object.types.as_ref().context("a document without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(types)?;
        let (resource, capabilities) = match discovery::pinned_kind(client, &gvk).await {
            Ok(found) => found,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                skipped.push(format!("{}/{}", types.api_version, types.kind));
                continue;
            }
            Err(kube::Error::Discovery(_)) => {
                skipped.push(format!("{}/{}", types.api_version, types.kind));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let api: Api<DynamicObject> = match (capabilities.scope, object.namespace()) {
            (Scope::Namespaced, Some(namespace)) => Api::namespaced_with(client.clone(), &namespace, &resource),
            (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
            (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
        api.patch(&object.name_any(), &params, &Patch::Apply(&object))
            .await
            .with_context(|| format!("applying {} {}", types.kind, object.name_any()))?;
    }
    Ok(skipped)
}

/// kube (ring) and alloy/reqwest (aws-lc-rs) both enable a rustls provider, so rustls cannot pick
/// one by itself: install one before the first TLS connection.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// etcd and kube-apiserver on free loopback ports, with a private directory; both stop on drop.
pub struct TestCluster {
    name: String,
    dir: PathBuf,
    port: u16,
    service_cidr: String,
    tokens: HashMap<&'static str, String>,
    processes: Vec<Child>,
}

impl TestCluster {
    /// Starts a fresh cluster and waits until it is ready, with the namespaces of [`NAMESPACES`].
    /// `name` names the kubeconfig context (and shows in the directory and error messages).
    pub async fn start(name: &str) -> Result<TestCluster> {
        install_crypto_provider();
        let started = Instant::now();
        let apiserver = apiserver_binary()?;
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let sequence = STARTED.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // A short path on tmpfs: etcd fsyncs every write.
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        remove_stale_dirs(&base);
        let dir = base.join(format!("kc-{name}-{pid}-{sequence}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

        let tokens: HashMap<&'static str, String> =
            USERS.iter().map(|user| (*user, format!("{user}-{pid}-{sequence}-{:x}", nanos()))).collect();
        fs::write(
            dir.join("tokens.csv"),
            format!(
                "{},admin,admin,\"system:masters\"\n{},{BACKEND_SERVICE_ACCOUNT},backend,\"{}\"\n",
                tokens["admin"],
                tokens["backend"],
                "system:serviceaccounts,system:serviceaccounts:conference-system,system:authenticated"
            ),
        )?;
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(dir.join("sa.key"))
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .context("running openssl")?;
        if !status.success() {
            bail!("openssl genrsa failed");
        }

        // A loopback service range of its own (a /24 picked from the process id and a counter), so
        // that FakeNode can listen on cluster IPs and two clusters never hand out the same one.
        let slot = (pid.wrapping_mul(31).wrapping_add(sequence.wrapping_mul(7919))) % (191 * 256);
        let service_cidr = format!("127.{}.{}.0/24", 64 + slot / 256, slot % 256);

        let mut cluster = TestCluster { name: name.into(), dir, port: 0, service_cidr, tokens, processes: vec![] };
        let etcd_port = free_loopback_port()?;
        let peer_port = free_loopback_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Command::new("etcd");
        etcd.arg(format!("--name={name}"))
            .arg(format!("--data-dir={}", cluster.dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={name}={peer_url}"))
            .args(["--logger=zap", "--log-level=warn"]);
        cluster.spawn(etcd, "etcd")?;

        cluster.port = free_loopback_port()?;
        let dir = cluster.dir.clone();
        let mut apiserver = Command::new(apiserver);
        apiserver
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .arg(format!("--secure-port={}", cluster.port))
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg(format!("--token-auth-file={}", dir.join("tokens.csv").display()))
            .arg("--authorization-mode=RBAC")
            .arg(format!("--service-account-key-file={}", dir.join("sa.key").display()))
            .arg(format!("--service-account-signing-key-file={}", dir.join("sa.key").display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg("--feature-gates=BoundServiceAccountTokenVolume=true")
            .arg(format!("--etcd-servers={etcd_url}"))
            .arg(format!("--service-cluster-ip-range={}", cluster.service_cidr))
            // The endpoints of the `kubernetes` Service would be 127.0.0.1, which Endpoints reject.
            .arg("--endpoint-reconciler-type=none")
            .arg("--v=0");
        cluster.spawn(apiserver, "kube-apiserver")?;

        cluster.wait_ready().await?;
        let admin = cluster.client("admin").await?;
        let pp = PostParams::default();
        for namespace in NAMESPACES {
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
            Api::<Namespace>::all(admin.clone()).create(&pp, &ns).await?;
            // The serviceaccount controller's job: pods are admitted only once `default` exists.
            let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}}))?;
            Api::<ServiceAccount>::namespaced(admin.clone(), namespace).create(&pp, &sa).await?;
        }
        eprintln!(
            "test cluster {name}: https://127.0.0.1:{} ready in {:.1} s (services {})",
            cluster.port,
            started.elapsed().as_secs_f64(),
            cluster.service_cidr
        );
        Ok(cluster)
    }

    /// The cluster's name, as given to [`TestCluster::start`] (also its kubeconfig context).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API server's address, `https://127.0.0.1:PORT`.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The cluster's service range, a loopback /24 such as `127.77.12.0/24`.
    pub fn service_cidr(&self) -> &str {
        &self.service_cidr
    }

    /// The process ids of etcd and kube-apiserver (e.g. to measure their memory).
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(Child::id).collect()
    }

    /// Writes a kubeconfig for `user` (`admin` or `backend`) to `path`: this server with its own CA,
    /// the user's bearer token, one context named after the cluster, namespace `conferences`.
    pub fn kubeconfig(&self, user: &str, path: &Path) -> Result<()> {
        let token = self.tokens.get(user).ok_or_else(|| anyhow!("no user {user:?}: one of {USERS:?}"))?;
        // apiserver.crt holds the serving certificate and the self-signed CA that issued it.
        let ca = fs::read(self.dir.join("certs/apiserver.crt")).context("reading the API server's certificate")?;
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {
                "server": self.server(),
                "certificate-authority-data": k8s_openapi::ByteString(ca),
            }}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": user, "namespace": "conferences"}}],
            "current-context": self.name,
        });
        fs::write(path, serde_yaml::to_string(&config)?).with_context(|| format!("writing {}", path.display()))
    }

    /// A client acting as `user` (`admin` or `backend`), through a kubeconfig of [`Self::kubeconfig`].
    pub async fn client(&self, user: &str) -> Result<Client> {
        install_crypto_provider();
        let path = self.dir.join(format!("kubeconfig-{user}"));
        self.kubeconfig(user, &path)?;
        let kubeconfig = Kubeconfig::read_from(&path)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    fn spawn(&mut self, mut command: Command, what: &str) -> Result<()> {
        let log = fs::File::create(self.dir.join(format!("{what}.log")))?;
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).process_group(0);
        // If this process dies without unwinding (SIGKILL, abort), take the server down with it. The
        // signal follows the spawning thread, which lives as long as the test (or runtime) that
        // started the cluster.
        unsafe {
            command.pre_exec(|| prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from));
        }
        let child = command.spawn().with_context(|| format!("starting {what}"))?;
        self.processes.push(child);
        Ok(())
    }

    /// Until `/readyz` answers 200 to the admin, or 60 s; fails early if a server exits.
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last_error = String::new();
        loop {
            for (child, what) in self.processes.iter_mut().zip(["etcd", "kube-apiserver"]) {
                if let Some(status) = child.try_wait()? {
                    bail!("{what} of test cluster {} exited ({status}):\n{}", self.name, self.log_tail(what));
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "test cluster {} not ready after 60 s ({last_error}):\n{}",
                    self.name,
                    self.log_tail("kube-apiserver")
                );
            }
            if self.dir.join("certs/apiserver.crt").exists() {
                match self.readyz().await {
                    Ok(()) => return Ok(()),
                    Err(error) => last_error = format!("{error:#}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn readyz(&self) -> Result<()> {
        let client = self.client("admin").await?;
        let request = http_get("/readyz")?;
        let body = client.request_text(request).await?;
        if body.trim() != "ok" {
            bail!("readyz: {body}");
        }
        Ok(())
    }

    fn log_tail(&self, what: &str) -> String {
        let log = fs::read_to_string(self.dir.join(format!("{what}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // The API server first, so it does not log etcd's disappearance; each in its own group.
        for child in self.processes.iter_mut().rev() {
            let _ = nix::sys::signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Clusters of test processes that died without unwinding (SIGKILL) leave their directory behind
/// (their servers die with them): removed by the next start.
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("kc-") else { continue };
        let owner = rest.rsplit('-').nth(1).and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn http_get(path: &str) -> Result<http::Request<Vec<u8>>> {
    Ok(http::Request::get(path).body(vec![])?)
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

/// The kubelet's and kube-proxy's stand-in for one namespace (as kwok does): marks every pod
/// Running and Ready `start_delay` after it appears, with an address of its own where its videobridge
/// answers, removes a pod being deleted at once (its containers "stop" without waiting out the grace
/// period), and answers HTTP on clusterIP:443 of every Service with a loopback cluster IP for as long as
/// the Service exists. Dropping it stops all.
pub struct FakeNode {
    tasks: Vec<JoinHandle<()>>,
    /// What every videobridge of this node reports at `/colibri/stats`.
    pub videobridge_stats: Arc<RwLock<Value>>,
    /// Load balancer Services whose pod was created before their address was assigned.
    pub media_violations: Arc<RwLock<Vec<String>>>,
}

/// How long the stand-in load balancer controller takes to assign an address, as a cloud's does.
pub const LOAD_BALANCER_DELAY: Duration = Duration::from_millis(700);

/// A videobridge's statistics with one conference of `participants` and media flowing at `packets` a
/// second each way (the keys Jitsi Videobridge's `/colibri/stats` has).
pub fn videobridge_stats(participants: u64, packets: u64) -> Value {
    json!({
        "conferences": 1,
        "participants": participants,
        "endpoints_sending_video": participants,
        "packet_rate_upload": packets,
        "packet_rate_download": packets,
        "bit_rate_upload": packets * 1_000,
        "bit_rate_download": packets * 1_000,
    })
}

impl FakeNode {
    /// Starts watching `namespace` with `client` (which needs pods/status and services rights:
    /// use the admin's). Must be called within a Tokio runtime.
    pub fn start(client: Client, namespace: &str, start_delay: Duration) -> FakeNode {
        let pods = Api::<Pod>::namespaced(client.clone(), namespace);
        let services = Api::<Service>::namespaced(client, namespace);
        let stats = Arc::new(RwLock::new(videobridge_stats(0, 0)));
        let violations = Arc::new(RwLock::new(Vec::new()));
        FakeNode {
            tasks: vec![
                tokio::spawn(run_pods(pods.clone(), start_delay, stats.clone())),
                tokio::spawn(run_services(services, pods, violations.clone())),
            ],
            videobridge_stats: stats,
            media_violations: violations,
        }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A task that is aborted when its handle is dropped, so that the tasks a FakeNode started go with it.
struct Owned(JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Hands out pod addresses, 127.250.0.1 and up, unique in the test process.
static NEXT_POD_ADDRESS: AtomicU32 = AtomicU32::new(0);

fn pod_address() -> Ipv4Addr {
    let n = NEXT_POD_ADDRESS.fetch_add(1, Ordering::Relaxed);
    Ipv4Addr::new(127, 250, (n / 250) as u8, (n % 250 + 1) as u8)
}

async fn run_pods(pods: Api<Pod>, start_delay: Duration, stats: Arc<RwLock<Value>>) {
    let mut starting: HashMap<String, Owned> = HashMap::new();
    // Each started pod's videobridge, by pod uid: it answers for as long as the pod exists.
    let mut bridges: HashMap<String, Owned> = HashMap::new();
    let mut events = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => {
                let uid = pod.uid().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    // A kubelet stops the containers within the grace period, then removes the pod for
                    // good; this stand-in's containers stop at once.
                    starting.remove(&uid);
                    bridges.remove(&uid);
                    tokio::spawn(finish_deletion(pods.clone(), pod.name_any()));
                } else if pod_ready(&pod) {
                    starting.remove(&uid);
                } else if let std::collections::hash_map::Entry::Vacant(slot) = starting.entry(uid.clone()) {
                    let address = pod_address();
                    match bind(SocketAddr::new(IpAddr::V4(address), 8080)) {
                        Ok(listener) => {
                            bridges.insert(uid, Owned(tokio::spawn(answer_videobridge(listener, stats.clone()))));
                        }
                        Err(error) => {
                            eprintln!("fake node: the videobridge of pod {} on {address}: {error}", pod.name_any())
                        }
                    }
                    slot.insert(Owned(tokio::spawn(start_pod(pods.clone(), pod, start_delay, address))));
                }
            }
            Ok(Event::Delete(pod)) => {
                let uid = pod.uid().unwrap_or_default();
                starting.remove(&uid);
                bridges.remove(&uid);
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(error) => {
                eprintln!("fake node: watching pods: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn finish_deletion(pods: Api<Pod>, name: String) {
    if let Err(error) = pods.delete(&name, &kube::api::DeleteParams::default().grace_period(0)).await
        && !matches!(&error, kube::Error::Api(status) if status.code == 404)
    {
        eprintln!("fake node: removing pod {name}: {error}");
    }
}

/// Whether the pod has the condition Ready=True.
pub fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|status| status.conditions.as_ref());
    conditions.is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn start_pod(pods: Api<Pod>, pod: Pod, start_delay: Duration, address: Ipv4Addr) {
    tokio::time::sleep(start_delay).await;
    let now = Timestamp::now().to_string();
    let containers = pod.spec.as_ref().map(|spec| spec.containers.as_slice()).unwrap_or_default();
    let container_statuses: Vec<_> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
    let conditions = ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map(condition);
    let status = json!({"status": {
        "phase": "Running",
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "podIP": address.to_string(),
        "podIPs": [{"ip": address.to_string()}],
        "startTime": now,
        "containerStatuses": container_statuses,
    }});
    let name = pod.name_any();
    if let Err(error) = pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await {
        // A pod deleted while "starting" is not an error of the node's.
        if !matches!(&error, kube::Error::Api(status) if status.code == 404) {
            eprintln!("fake node: starting pod {name}: {error}");
        }
    }
}

async fn run_services(services: Api<Service>, pods: Api<Pod>, violations: Arc<RwLock<Vec<String>>>) {
    // Service uid -> the listeners answering on its cluster IP, or its load balancer being assigned.
    let mut listening: HashMap<String, Vec<Owned>> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut events = watcher::watcher(services.clone(), watcher::Config::default()).boxed();
    let on_apply = |listening: &mut HashMap<String, Vec<Owned>>, service: Service| {
        let uid = service.uid().unwrap_or_default();
        if listening.contains_key(&uid) {
            return;
        }
        let mut tasks = listen(&service);
        if needs_load_balancer(&service) {
            let assign = assign_load_balancer(services.clone(), pods.clone(), service, violations.clone());
            tasks.push(Owned(tokio::spawn(assign)));
        }
        listening.insert(uid, tasks);
    };
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(service)) => {
                listed.insert(service.uid().unwrap_or_default());
                on_apply(&mut listening, service);
            }
            // Services deleted while the watch was down are not reported: drop what the list lacks.
            Ok(Event::InitDone) => listening.retain(|uid, _| listed.contains(uid)),
            Ok(Event::Apply(service)) => on_apply(&mut listening, service),
            Ok(Event::Delete(service)) => {
                listening.remove(&service.uid().unwrap_or_default());
            }
            Err(error) => {
                eprintln!("fake node: watching services: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Listeners answering HTTP on each TCP port of the Service's cluster IP, if it is on loopback.
fn listen(service: &Service) -> Vec<Owned> {
    let spec = service.spec.as_ref();
    let cluster_ip = spec.and_then(|spec| spec.cluster_ip.as_deref()).unwrap_or_default();
    let Ok(ip) = cluster_ip.parse::<Ipv4Addr>() else { return vec![] };
    if !ip.is_loopback() {
        return vec![];
    }
    let ports = spec.and_then(|spec| spec.ports.clone()).unwrap_or_default();
    let tcp = ports.iter().filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP");
    tcp.filter_map(|port| {
        let address = SocketAddr::new(IpAddr::V4(ip), u16::try_from(port.port).ok()?);
        match bind(address) {
            Ok(listener) => Some(Owned(tokio::spawn(answer_http(listener)))),
            Err(error) => {
                eprintln!("fake node: listening on {address} for service {}: {error}", service.name_any());
                None
            }
        }
    })
    .collect()
}

fn needs_load_balancer(service: &Service) -> bool {
    let load_balancer = service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    let assigned =
        service.status.as_ref().and_then(|s| s.load_balancer.as_ref()?.ingress.as_ref()).is_some_and(|i| !i.is_empty());
    load_balancer && !assigned
}

/// Hands out load balancer addresses, 198.51.100.1 and up (documentation space: never contacted).
static NEXT_LOAD_BALANCER: AtomicU32 = AtomicU32::new(0);

/// The cloud's load balancer controller, as far as the orchestrator can tell: after
/// [`LOAD_BALANCER_DELAY`], the Service's status gets an address. If a pod the Service selects
/// already exists then, it was created before its media address was known: a violation.
async fn assign_load_balancer(
    services: Api<Service>,
    pods: Api<Pod>,
    service: Service,
    violations: Arc<RwLock<Vec<String>>>,
) {
    tokio::time::sleep(LOAD_BALANCER_DELAY).await;
    let name = service.name_any();
    let selector = service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let selector: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !selector.is_empty() {
        match pods.list(&kube::api::ListParams::default().labels(&selector.join(","))).await {
            Ok(list) if !list.items.is_empty() => {
                let names: Vec<String> = list.items.iter().map(|p| p.name_any()).collect();
                violations.write().expect("not poisoned").push(format!("{name}: pods {names:?} before its address"));
            }
            Ok(_) => {}
            Err(error) => eprintln!("fake node: listing the pods of service {name}: {error}"),
        }
    }
    let n = NEXT_LOAD_BALANCER.fetch_add(1, Ordering::Relaxed);
    let ip = Ipv4Addr::new(198, 51, 100, (n % 254 + 1) as u8);
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": ip.to_string()}]}}});
    if let Err(error) = services.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await
        && !matches!(&error, kube::Error::Api(status) if status.code == 404)
    {
        eprintln!("fake node: assigning {ip} to service {name}: {error}");
    }
}

/// Jitsi's web container, as far as a probe can tell: 200 to anything.
async fn answer_http(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
                .await;
            let _ = stream.shutdown().await;
        });
    }
}

/// A listening socket on `address`, for the runtime.
fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let listener = StdTcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// A pod's videobridge on its private REST interface: `/about/health` (200) and `/colibri/stats` (the
/// node's statistics, as JSON); 404 for anything else.
async fn answer_videobridge(listener: TcpListener, stats: Arc<RwLock<Value>>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_owned();
            let (status, body) = match line.split(' ').nth(1) {
                Some("/about/health") => ("200 OK", "{}".to_owned()),
                Some("/colibri/stats") => ("200 OK", stats.read().expect("not poisoned").to_string()),
                _ => ("404 Not Found", "{}".to_owned()),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// One test cluster as the backend's clusters file describes it.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: &'static str,
    pub region: u8,
    pub gdpr: bool,
    pub capacity_millicores: u64,
    pub warm_pool: u32,
    pub media: Media,
}

/// How a test cluster exposes its videobridges' UDP (`[cluster.media]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// A load balancer per pod, assigned by the stand-in controller after [`LOAD_BALANCER_DELAY`].
    LoadBalancer,
    /// A node port per pod on [`TEST_NODE_ADDRESS`].
    NodePort,
}

/// The public address of the test clusters' nodes (documentation space: never contacted).
pub const TEST_NODE_ADDRESS: &str = "192.0.2.10";

/// The DNS zone of test cluster `name`'s conferences (`.test` is reserved: never resolved).
pub fn test_domain(name: &str) -> String {
    format!("{name}.conference.test")
}

/// Several test clusters ready for the backend: `deploy/`'s manifests applied (so the backend acts as
/// its ServiceAccount, bound by the Role there), a stand-in node in each conference namespace, a
/// kubeconfig per cluster for the `backend` user, and the clusters file naming them.
pub struct KubeClusters {
    // Dropped first: the stand-in nodes stop watching before their clusters go.
    nodes: Vec<FakeNode>,
    pub clusters: Vec<TestCluster>,
    /// The admin's client of each cluster, for the tests' own reads and writes.
    pub admins: Vec<Client>,
    /// The clusters file to hand the backend (`--clusters-file`).
    pub file: PathBuf,
}

/// The Jitsi app secret of the tests (never a real one).
pub const TEST_JITSI_SECRET: &str = "the tests' Jitsi app secret";

/// The latency table of the test clusters: regions 0 (EU) and 1 (US), 10 ms within one, 90 across.
pub const TEST_LATENCY: &str = "[latency]\nms = [[10, 90], [90, 10]]\n";

impl KubeClusters {
    /// Starts the clusters (at once), with pods starting `start_delay` after they are created.
    pub async fn start(name: &str, specs: &[ClusterSpec], start_delay: Duration) -> Result<Self> {
        Self::start_with(name, specs, start_delay, "flexible").await
    }

    /// As [`KubeClusters::start`], with the clusters file's `warm_pool_for` (`flexible` or `all`).
    pub async fn start_with(
        name: &str,
        specs: &[ClusterSpec],
        start_delay: Duration,
        warm_pool_for: &str,
    ) -> Result<Self> {
        let started = futures::future::join_all(specs.iter().map(|spec| TestCluster::start(spec.name))).await;
        let clusters = started.into_iter().collect::<Result<Vec<_>>>()?;
        let manifests = kustomize(&crate::repo_root().join("deploy"))?;
        let dir = std::env::temp_dir().join(format!("conference-clusters-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let mut file = format!(
            "{TEST_LATENCY}\n[conference]\ngrace_period_secs = 30\nstart_timeout_secs = 120\nwarm_pool_for = \"{warm_pool_for}\"\n"
        );
        let (mut admins, mut nodes) = (Vec::new(), Vec::new());
        for (cluster, spec) in clusters.iter().zip(specs) {
            let admin = cluster.client("admin").await?;
            apply_yaml(&admin, &manifests).await?;
            nodes.push(FakeNode::start(admin.clone(), "conferences", start_delay));
            admins.push(admin);
            let kubeconfig = dir.join(format!("{}.kubeconfig", spec.name));
            cluster.kubeconfig("backend", &kubeconfig)?;
            let media = match spec.media {
                Media::LoadBalancer => "type = \"LoadBalancer\"".to_owned(),
                Media::NodePort => format!("type = \"NodePort\"\nnode_addresses = [\"{TEST_NODE_ADDRESS}\"]"),
            };
            file.push_str(&format!(
                "\n[[cluster]]\nname = \"{}\"\nregion = {}\ngdpr = {}\ncapacity_millicores = {}\n\
                 namespace = \"conferences\"\nkubeconfig = \"{}\"\nwarm_pool = {}\n\
                 [cluster.web]\ndomain = \"{}\"\ntls_secret = \"wildcard-tls\"\n[cluster.media]\n{media}\n",
                spec.name,
                spec.region,
                spec.gdpr,
                spec.capacity_millicores,
                kubeconfig.display(),
                spec.warm_pool,
                test_domain(spec.name),
            ));
        }
        let path = dir.join("clusters.toml");
        fs::write(&path, file)?;
        Ok(Self { clusters, admins, file: path, nodes })
    }

    /// The local stack with its backend on these clusters (the Kubernetes orchestrator).
    pub async fn stack(&self, name: &str) -> Result<crate::Stack> {
        self.stack_over(name, false).await
    }

    /// As [`KubeClusters::stack`], the backend following the chain over WebSocket if `websocket`.
    pub async fn stack_over(&self, name: &str, websocket: bool) -> Result<crate::Stack> {
        let file = self.file.to_string_lossy().into_owned();
        let flags = ["--orchestrator", "kubernetes", "--clusters-file", &file, "--jitsi-app-secret", TEST_JITSI_SECRET];
        crate::Stack::start_with(name, websocket, &flags).await
    }

    /// Every load balancer Service, in any cluster, whose pod existed before its address did.
    pub fn media_violations(&self) -> Vec<String> {
        self.nodes.iter().flat_map(|node| node.media_violations.read().expect("not poisoned").clone()).collect()
    }

    pub fn ingresses(&self, cluster: usize) -> Api<k8s_openapi::api::networking::v1::Ingress> {
        Api::namespaced(self.admins[cluster].clone(), "conferences")
    }

    /// What every pod's videobridge in every cluster reports at `/colibri/stats` from now on.
    pub fn set_videobridge_stats(&self, stats: Value) {
        for node in &self.nodes {
            *node.videobridge_stats.write().expect("not poisoned") = stats.clone();
        }
    }

    pub fn pods(&self, cluster: usize) -> Api<Pod> {
        Api::namespaced(self.admins[cluster].clone(), "conferences")
    }

    pub fn services(&self, cluster: usize) -> Api<Service> {
        Api::namespaced(self.admins[cluster].clone(), "conferences")
    }

    /// The live pods of agreement `id` (or of the warm pool, for None) in `cluster`.
    pub async fn pods_of(&self, cluster: usize, id: Option<u64>) -> Result<Vec<Pod>> {
        let selector = match id {
            Some(id) => format!("conference.escrow/agreement={id}"),
            None => "conference.escrow/pool=warm".to_owned(),
        };
        let pods = self.pods(cluster).list(&kube::api::ListParams::default().labels(&selector)).await?;
        Ok(pods.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect())
    }
}
