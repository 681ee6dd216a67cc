//! deploy/'s manifests on a real API server (tests/src/kube.rs): the backend's ServiceAccount can do
//! exactly what the Kubernetes orchestrator needs in `conferences` and is refused everything else;
//! and the test cluster's stand-in node starts pods and answers on Service cluster IPs.
//! Needs kube-apiserver: `make kube` builds and caches it once.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use conference_e2e::{
    kube::{FakeNode, TestCluster, apply_yaml, kustomize},
    repo_root,
};
use k8s_openapi::api::{
    core::v1::{Node, Pod, Secret, Service},
    networking::v1::Ingress,
};
use kube::{
    Client,
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::{io::AsyncReadExt, net::TcpStream};

fn conference_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "conference-backend", "conference": name}},
        "spec": {"containers": [{"name": "web", "image": "jitsi/web"}, {"name": "jvb", "image": "jitsi/jvb"}]},
    }))
    .expect("a valid pod")
}

fn conference_service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "conference-backend"}},
        "spec": {
            "selector": {"conference": name},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
    }))
    .expect("a valid service")
}

/// The HTTP status of a refused call (panics if it succeeded or failed otherwise).
fn refused<T>(result: kube::Result<T>, what: &str) -> u16 {
    match result {
        Ok(_) => panic!("{what}: allowed, expected a refusal"),
        Err(kube::Error::Api(status)) => status.code,
        Err(error) => panic!("{what}: {error}"),
    }
}

/// The cluster with deploy/ applied as the admin; returns the backend's client.
async fn cluster_with_deploy(name: &str) -> Result<(TestCluster, Client)> {
    let cluster = TestCluster::start(name).await?;
    let rendered = kustomize(&repo_root().join("deploy"))?;
    let skipped = apply_yaml(&cluster.client("admin").await?, &rendered).await?;
    // The one kind 1.20 predates: policy/v1 arrived in 1.21 (v1beta1 is gone since 1.25).
    assert_eq!(skipped, ["policy/v1/PodDisruptionBudget"], "kinds the API server did not serve");
    let backend = cluster.client("backend").await?;
    Ok((cluster, backend))
}

#[tokio::test]
async fn the_backend_manages_conference_pods_and_services() -> Result<()> {
    let (_cluster, backend) = cluster_with_deploy("grants").await?;
    let pods = Api::<Pod>::namespaced(backend.clone(), "conferences");
    let services = Api::<Service>::namespaced(backend.clone(), "conferences");
    let pp = PostParams::default();
    let label = Patch::Merge(json!({"metadata": {"labels": {"checked": "yes"}}}));

    pods.create(&pp, &conference_pod("c-1")).await.context("create pod")?;
    assert_eq!(pods.get("c-1").await.context("get pod")?.metadata.name.as_deref(), Some("c-1"));
    let listed = pods.list(&ListParams::default().labels("app.kubernetes.io/managed-by=conference-backend")).await?;
    assert_eq!(listed.items.len(), 1);
    let patched = pods.patch("c-1", &PatchParams::default(), &label).await.context("patch pod")?;
    assert_eq!(patched.metadata.labels.unwrap_or_default().get("checked").map(String::as_str), Some("yes"));
    pods.delete("c-1", &DeleteParams::default()).await.context("delete pod")?;

    services.create(&pp, &conference_service("c-1")).await.context("create service")?;
    let service = services.get("c-1").await.context("get service")?;
    let ports = service.spec.and_then(|spec| spec.ports).unwrap_or_default();
    assert_eq!(ports.iter().map(|p| (p.port, p.protocol.as_deref())).collect::<Vec<_>>(), [(80, Some("TCP"))]);
    assert_eq!(services.list(&ListParams::default()).await.context("list services")?.items.len(), 1);
    services.patch("c-1", &PatchParams::default(), &label).await.context("patch service")?;
    services.delete("c-1", &DeleteParams::default()).await.context("delete service")?;

    // A conference's Ingress.
    let ingresses = Api::<Ingress>::namespaced(backend.clone(), "conferences");
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "c-1", "labels": {"app.kubernetes.io/managed-by": "conference-backend"}},
        "spec": {"rules": [{"host": "c-1.meet.conference.test", "http": {"paths": [{
            "path": "/", "pathType": "Prefix", "backend": {"service": {"name": "c-1", "port": {"number": 80}}},
        }]}}]},
    }))?;
    ingresses.create(&pp, &ingress).await.context("create ingress")?;
    assert_eq!(ingresses.list(&ListParams::default()).await.context("list ingresses")?.items.len(), 1);
    ingresses.patch("c-1", &PatchParams::default(), &label).await.context("patch ingress")?;
    ingresses.delete("c-1", &DeleteParams::default()).await.context("delete ingress")?;
    let other = Api::<Ingress>::namespaced(backend.clone(), "other");
    assert_eq!(refused(other.create(&pp, &ingress).await, "ingress in other"), 403);

    // The orchestrator's watchers list, then watch (the request is authorized before any event).
    let _events = pods.watch(&Default::default(), "0").await.context("watch pods")?;
    let _events = services.watch(&Default::default(), "0").await.context("watch services")?;
    Ok(())
}

#[tokio::test]
async fn the_backend_is_refused_everything_else() -> Result<()> {
    let (cluster, backend) = cluster_with_deploy("refusals").await?;
    let admin = cluster.client("admin").await?;
    Api::<Pod>::namespaced(admin, "conferences").create(&PostParams::default(), &conference_pod("c-2")).await?;

    for namespace in ["conferences", "conference-system"] {
        let secrets = Api::<Secret>::namespaced(backend.clone(), namespace);
        assert_eq!(refused(secrets.get("jitsi-jwt").await, "get a secret"), 403, "get secret in {namespace}");
        assert_eq!(refused(secrets.list(&ListParams::default()).await, "list secrets"), 403, "in {namespace}");
    }
    let other = Api::<Pod>::namespaced(backend.clone(), "other");
    assert_eq!(refused(other.create(&PostParams::default(), &conference_pod("c-3")).await, "pod in other"), 403);
    let everywhere = Api::<Pod>::all(backend.clone());
    assert_eq!(refused(everywhere.list(&ListParams::default()).await, "pods cluster-wide"), 403);
    let nodes = Api::<Node>::all(backend.clone());
    assert_eq!(refused(nodes.list(&ListParams::default()).await, "list nodes"), 403);
    let pods = Api::<Pod>::namespaced(backend.clone(), "conferences");
    let running = Patch::Merge(json!({"status": {"phase": "Running"}}));
    assert_eq!(refused(pods.patch_status("c-2", &PatchParams::default(), &running).await, "pods/status"), 403);
    Ok(())
}

#[tokio::test]
async fn the_fake_node_starts_pods_and_answers_on_cluster_ips_and_pod_addresses() -> Result<()> {
    let (cluster, backend) = cluster_with_deploy("node").await?;
    let _node = FakeNode::start(cluster.client("admin").await?, "conferences", Duration::from_millis(200));
    let pods = Api::<Pod>::namespaced(backend.clone(), "conferences");
    let services = Api::<Service>::namespaced(backend.clone(), "conferences");
    pods.create(&PostParams::default(), &conference_pod("c-4")).await?;
    services.create(&PostParams::default(), &conference_service("c-4")).await?;

    let pod = eventually("pod c-4 ready", || async {
        let pod = pods.get("c-4").await.ok()?;
        let status = pod.status.as_ref()?;
        let ready = status.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        (ready && status.phase.as_deref() == Some("Running")).then_some(pod)
    })
    .await?;
    let status = pod.status.unwrap_or_default();
    let pod_ip = status.pod_ip.clone().context("a pod address")?;
    assert!(pod_ip.starts_with("127.250."), "each pod an address of its own on loopback: {pod_ip}");
    assert!(status.container_statuses.unwrap_or_default().iter().all(|c| c.ready));
    // Its videobridge answers on the pod's address, as the probe reads it.
    let health = reqwest::get(format!("http://{pod_ip}:8080/about/health")).await?;
    assert_eq!(health.status(), 200);
    let stats: serde_json::Value = reqwest::get(format!("http://{pod_ip}:8080/colibri/stats")).await?.json().await?;
    assert_eq!(stats["conferences"], 1, "{stats}");

    let cluster_ip = services.get("c-4").await?.spec.and_then(|spec| spec.cluster_ip).context("no cluster IP")?;
    let prefix = cluster.service_cidr().trim_end_matches("0/24");
    assert!(cluster_ip.starts_with(prefix), "{cluster_ip} outside {}", cluster.service_cidr());
    let address = format!("{cluster_ip}:80");
    let answer = eventually("an answer on the cluster IP", || async {
        let mut stream = TcpStream::connect(&address).await.ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        Some(answer)
    })
    .await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    services.delete("c-4", &DeleteParams::default()).await?;
    eventually("the cluster IP closed", || async { TcpStream::connect(&address).await.is_err().then_some(()) }).await?;
    Ok(())
}

#[tokio::test]
async fn two_clusters_run_at_once_and_leave_nothing_behind() -> Result<()> {
    let started = Instant::now();
    let (eu, us) = tokio::join!(TestCluster::start("eu"), TestCluster::start("us"));
    let (eu, us) = (eu?, us?);
    eprintln!("two clusters ready in {:.1} s", started.elapsed().as_secs_f64());
    assert_ne!(eu.server(), us.server());
    assert_ne!(eu.service_cidr(), us.service_cidr());
    for cluster in [&eu, &us] {
        let names: Vec<String> = Api::<k8s_openapi::api::core::v1::Namespace>::all(cluster.client("admin").await?)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|ns| ns.metadata.name)
            .collect();
        for expected in ["conferences", "conference-system", "other"] {
            assert!(names.iter().any(|n| n == expected), "{} lacks {expected}: {names:?}", cluster.name());
        }
    }
    let rss_kib: u64 = eu.pids().iter().map(|pid| rss_kib(*pid)).sum();
    eprintln!("one cluster (etcd + kube-apiserver): {} MiB resident", rss_kib / 1024);

    let pids: Vec<u32> = eu.pids().into_iter().chain(us.pids()).collect();
    drop((eu, us));
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "process {pid} outlived its cluster");
    }
    Ok(())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or_default()
}

/// Polls `check` until it yields a value, for up to 15 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
