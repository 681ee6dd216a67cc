//! The Kubernetes orchestrator end to end: agreements signed on anvil, the backend binary with
//! `--orchestrator kubernetes`, and real API servers (tests/src/kube.rs) with `deploy/`'s RBAC
//! applied, so the backend acts as its own ServiceAccount. A stand-in node marks pods Ready and
//! answers on Service cluster IPs. Needs kube-apiserver: `make kube` builds it once.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};
use anyhow::{Context, Result, ensure};
use conference_backend::dev::devnet;
use conference_e2e::kube::{ClusterSpec, KubeClusters, videobridge_stats};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::serde::Deserialize;
use kube::api::PostParams;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const FLEXIBLE_TERMS: u32 = 4;
const EU: u8 = 0;
const US: u8 = 1;

/// EU: GDPR-compliant, small. US: not GDPR-compliant, four times the room.
fn eu_and_us(warm_pool: u32) -> [ClusterSpec; 2] {
    [
        ClusterSpec { name: "eu", region: EU, gdpr: true, capacity_millicores: 4_000, warm_pool },
        ClusterSpec { name: "us", region: US, gdpr: false, capacity_millicores: 16_000, warm_pool: 0 },
    ]
}

fn labels(object: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Value {
    serde_json::to_value(object.labels.clone().unwrap_or_default()).unwrap()
}

/// Waits until `check` holds, or fails after `WAIT` saying `what`.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{what}: not within {WAIT:?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_agreement_gets_exactly_its_pod_and_service_where_placement_chose_and_its_end_removes_them()
-> Result<()> {
    let clusters = KubeClusters::start("k8s-place", &eu_and_us(0), Duration::ZERO).await?;
    let stack = clusters.stack("k8s-place").await?;
    let contract = format!("{:#x}", stack.devnet.escrow);

    // No participant regions registered: both clusters are as close, so the one with more room wins.
    let (id, _) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", WAIT).await?;
    assert_eq!(active["region"], US, "the activation reports the chosen cluster's region");
    let (us, eu) = (1, 0);
    ensure!(clusters.pods_of(eu, Some(id)).await?.is_empty(), "nothing in the cluster placement did not choose");
    let pods = clusters.pods_of(us, Some(id)).await?;
    assert_eq!(pods.len(), 1, "exactly one pod for the agreement");
    let pod = &pods[0];
    let name = format!("conference-{id}");
    assert_eq!(pod.metadata.name.as_deref(), Some(name.as_str()));
    assert_eq!(
        labels(&pod.metadata),
        json!({
            "app.kubernetes.io/managed-by": "conference-backend",
            "app.kubernetes.io/name": "jitsi-meet",
            "conference.escrow/agreement": id.to_string(),
            "conference.escrow/chain": "31337",
            "conference.escrow/contract": contract,
        })
    );
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let customer = format!("{:#x}", stack.customer_address()).to_lowercase();
    for (key, value) in [
        ("conference.escrow/agreement", id.to_string()),
        ("conference.escrow/chain-id", "31337".into()),
        ("conference.escrow/contract", contract.clone()),
        ("conference.escrow/cluster", "us".into()),
        ("conference.escrow/region", "1".into()),
        // Nobody registered: sized for the default 10 participants in HD.
        ("conference.escrow/participants", "10".into()),
        ("conference.escrow/stream-kbps", "1500".into()),
        ("conference.escrow/millicores", "600".into()),
        ("kubernetes.io/egress-bandwidth", "135M".into()),
        ("kubernetes.io/ingress-bandwidth", "23M".into()),
    ] {
        assert_eq!(annotations.get(key), Some(&value), "annotation {key}");
    }
    assert_eq!(annotations.get("conference.escrow/customer").map(|c| c.to_lowercase()), Some(customer));
    let spec = pod.spec.as_ref().context("a pod spec")?;
    let containers: Vec<(&str, &str)> =
        spec.containers.iter().map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default())).collect();
    assert_eq!(
        containers,
        [
            ("web", "docker.io/jitsi/web:stable-9955"),
            ("prosody", "docker.io/jitsi/prosody:stable-9955"),
            ("jicofo", "docker.io/jitsi/jicofo:stable-9955"),
            ("jvb", "docker.io/jitsi/jvb:stable-9955"),
        ]
    );
    let resources = |name: &str| {
        let container = spec.containers.iter().find(|c| c.name == name).unwrap();
        serde_json::to_value(container.resources.clone().unwrap()).unwrap()
    };
    assert_eq!(
        resources("jvb"),
        json!({"requests": {"cpu": "300m", "memory": "948Mi"}, "limits": {"cpu": "600m", "memory": "948Mi"}})
    );
    assert_eq!(
        resources("web"),
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}})
    );
    let env = |container: &str, name: &str| -> Option<Value> {
        let c = spec.containers.iter().find(|c| c.name == container)?;
        let var = c.env.as_ref()?.iter().find(|e| e.name == name)?;
        Some(serde_json::to_value(var).unwrap())
    };
    assert_eq!(env("prosody", "AUTH_TYPE"), Some(json!({"name": "AUTH_TYPE", "value": "jwt"})));
    assert_eq!(env("prosody", "ENABLE_GUESTS"), Some(json!({"name": "ENABLE_GUESTS", "value": "0"})));
    assert_eq!(env("prosody", "JWT_APP_ID"), Some(json!({"name": "JWT_APP_ID", "value": "conference"})));
    assert_eq!(
        env("prosody", "JWT_APP_SECRET"),
        Some(
            json!({"name": "JWT_APP_SECRET", "valueFrom": {"secretKeyRef": {"name": "jitsi-jwt", "key": "app-secret", "optional": false}}})
        ),
        "the secret is referenced, never written into the pod"
    );
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));

    let service = clusters.services(us).get(&name).await?;
    assert_eq!(labels(&service.metadata), labels(&pod.metadata));
    let service_spec = service.spec.clone().context("a service spec")?;
    assert_eq!(service_spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(
        serde_json::to_value(&service_spec.selector)?,
        json!({
            "app.kubernetes.io/managed-by": "conference-backend",
            "conference.escrow/agreement": id.to_string(),
            "conference.escrow/chain": "31337",
            "conference.escrow/contract": contract,
        })
    );
    let ports: Vec<(String, i32, String)> = service_spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port, p.protocol.unwrap_or_default()))
        .collect();
    assert_eq!(ports, [("https".into(), 443, "TCP".into()), ("jvb".into(), 10_000, "UDP".into())]);
    let cluster_ip = service_spec.cluster_ip.context("a cluster IP")?;
    assert_eq!(active["joinUrl"], format!("https://{cluster_ip}/conference-{id}"), "the join URL is the Service's");

    // The customer stops: the pod and the Service go, and the agreement is settled.
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", WAIT).await?;
    // Charged for the time used at the availability the probes of the pod measured, refunded the
    // rest, to the wei.
    conference_e2e::check_settlement(&settled)?;
    eventually("the pod and Service removed", || async {
        Ok(clusters.pods(us).get_opt(&name).await?.is_none() && clusters.services(us).get_opt(&name).await?.is_none())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_reads_the_videobridges_health_and_statistics_and_counts_a_bridge_that_forwards_nothing() -> Result<()>
{
    let clusters = KubeClusters::start("k8s-probe", &eu_and_us(0), Duration::ZERO).await?;
    let stack = clusters.stack("k8s-probe").await?;
    let (id, _) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", WAIT).await?;
    let probes = |what: &'static str, wanted: fn(&Value) -> bool| {
        let (stack, api) = (&stack, stack.api.clone());
        async move {
            let started = Instant::now();
            loop {
                let evidence: Value = reqwest::get(format!("{api}/api/agreements/{id}/probes")).await?.json().await?;
                let all: Vec<Value> = evidence["sessions"][0]["probes"].as_array().cloned().unwrap_or_default();
                if all.iter().any(wanted) {
                    return Ok::<_, anyhow::Error>(all);
                }
                ensure!(started.elapsed() < WAIT, "no probe {what}: {all:?}\n{}", stack.log_tail());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // Three participants and media both ways: up, with the bridge's own figures as the evidence.
    clusters.set_videobridge_stats(videobridge_stats(3, 450));
    let all = probes("forwarding", |p| {
        p["ok"] == true && p["detail"].as_str().is_some_and(|d| d.contains("videobridge healthy, forwarding"))
    })
    .await?;
    let detail = all.iter().rev().find_map(|p| p["detail"].as_str()).unwrap_or_default().to_owned();
    assert!(detail.contains("3 participants") && detail.contains("packets/s to them 450"), "{detail}");
    // The bridge answers but sends nothing to three participants: down, not up as a mere answer would be.
    clusters.set_videobridge_stats(videobridge_stats(3, 0));
    probes("not forwarding", |p| {
        p["ok"] == false && p["detail"].as_str().is_some_and(|d| d.contains("not forwarding"))
    })
    .await?;
    clusters.set_videobridge_stats(videobridge_stats(3, 450));
    let down = probes("down", |p| p["ok"] == false).await?.len();
    let started = Instant::now();
    loop {
        let evidence: Value = reqwest::get(format!("{}/api/agreements/{id}/probes", stack.api)).await?.json().await?;
        let all = evidence["sessions"][0]["probes"].as_array().cloned().unwrap_or_default();
        if all.iter().skip(down).any(|p| p["ok"] == true) {
            break;
        }
        ensure!(started.elapsed() < WAIT, "the probes did not count the bridge up again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(active["startedAt"].as_u64().is_some(), "startedAt");
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", WAIT).await?;
    let evidence: Value = reqwest::get(format!("{}/api/agreements/{id}/probes", stack.api)).await?.json().await?;
    let measured = &evidence["sessions"][0]["measurement"];
    let records = measured["records"].as_array().context("records")?;
    assert!(records.iter().any(|r| r["ok"] == false), "the bridge that forwarded nothing was counted down");
    let (due, ok) = (measured["due"].as_u64().context("due")?, measured["okSlots"].as_u64().context("okSlots")?);
    assert!(ok < due, "a slot down: {measured}");
    assert_eq!(settled["availabilityBps"].as_u64(), Some(ok * 10_000 / due), "exactly the share of slots up");
    assert_eq!(settled["availabilityBps"], measured["availabilityBps"]);
    conference_e2e::check_settlement(&settled)?;
    Ok(())
}

/// The customer's registration of `participants` (address, region), in HD.
fn registration(participants: &[(Address, u8)]) -> Value {
    json!({
        "participants": participants.iter().map(|(a, r)| json!({"address": a.to_string(), "region": r})).collect::<Vec<_>>(),
        "quality": "hd",
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn constraints_outweigh_latency_and_room_and_a_conference_no_cluster_can_take_is_refunded() -> Result<()> {
    let clusters = KubeClusters::start("k8s-constraints", &eu_and_us(0), Duration::ZERO).await?;
    let stack = clusters.stack("k8s-constraints").await?;
    let escrow = stack.escrow();

    // Minutes allowed in the EU only, for three participants in the US: the US cluster is closer to
    // every one of them and has four times the room, but the constraint rules it out.
    let minutes_terms = 3; // devnet::OFFERS[2], TimeLimited
    let deposit = escrow.quote(minutes_terms, 1 << EU, false, U256::from(10)).call().await?.deposit;
    let buy = escrow.buyMinutes(minutes_terms, 1 << EU, false, 10).value(deposit).send().await?;
    let (id, _) = conference_e2e::signed(buy.get_receipt().await?)?;
    stack.wait_status(id, "idle", WAIT).await?;
    let us_participants: Vec<(Address, u8)> = (1..=3).map(|i| (Address::with_last_byte(i), US)).collect();
    let customer = stack.sign_in_customer().await?;
    let (status, answer) = stack
        .post_as(&customer, &format!("/api/agreements/{id}/participants"), &registration(&us_participants))
        .await?;
    assert_eq!(status, 200, "{answer}");
    stack.customer_starts(id).await?;
    let active = stack.wait_status(id, "active", WAIT).await?;
    assert_eq!(active["region"], EU);
    assert_eq!(clusters.pods_of(0, Some(id)).await?.len(), 1, "placed in the EU");
    assert!(clusters.pods_of(1, Some(id)).await?.is_empty(), "never in the US");
    let pod = &clusters.pods_of(0, Some(id)).await?[0];
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["conference.escrow/participants"], "4", "three registered and the customer");

    // GDPR in the US only: the one GDPR cluster is in the EU, so nothing fits; refunded, not left hanging.
    let deposit = escrow.quote(devnet::DYNAMIC_TERMS, 1 << US, true, U256::ZERO).call().await?.deposit;
    let sign = escrow.sign(devnet::DYNAMIC_TERMS, 1 << US, true).value(deposit).send().await?;
    let (refused, _) = conference_e2e::signed(sign.get_receipt().await?)?;
    let refunded = stack.wait_status(refused, "refunded", WAIT).await?;
    assert_eq!(refunded["refundReason"], "declinedByOperator");
    assert_eq!(refunded["refund"], deposit.to_string(), "the whole deposit back, to the wei");
    assert_eq!(refunded["charged"], "0");
    for cluster in 0..2 {
        assert!(clusters.pods_of(cluster, Some(refused)).await?.is_empty(), "no pod for a declined conference");
    }
    let metrics = reqwest::get(format!("{}/metrics", stack.api)).await?.text().await?;
    for line in
        ["conference_placements_total{outcome=\"deployed\"} 1", "conference_placements_total{outcome=\"excluded\"} 1"]
    {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from /metrics:\n{metrics}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_with_no_live_agreement_are_collected_and_other_deployments_pods_are_left_alone() -> Result<()> {
    let clusters = KubeClusters::start("k8s-orphans", &eu_and_us(0)[..1], Duration::ZERO).await?;
    let mut stack = clusters.stack("k8s-orphans").await?;
    let contract = format!("{:#x}", stack.devnet.escrow);
    let orphan = |name: &str, contract: &str, agreement: &str| -> Result<Pod> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {
                "app.kubernetes.io/managed-by": "conference-backend",
                "conference.escrow/chain": "31337",
                "conference.escrow/contract": contract,
                "conference.escrow/agreement": agreement,
            }},
            "spec": {"containers": [{"name": "web", "image": "docker.io/jitsi/web:stable-9955"}]},
        }))?)
    };
    let pods = clusters.pods(0);
    pods.create(&PostParams::default(), &orphan("conference-4242", &contract, "4242")?).await?;
    let other = "0x000000000000000000000000000000000000beef";
    pods.create(&PostParams::default(), &orphan("conference-4243", other, "4243")?).await?;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "conference-4244", "labels": {
            "app.kubernetes.io/managed-by": "conference-backend",
            "conference.escrow/chain": "31337",
            "conference.escrow/contract": contract,
            "conference.escrow/agreement": "4244",
        }},
        "spec": {"ports": [{"name": "https", "port": 443}]},
    }))?;
    clusters.services(0).create(&PostParams::default(), &service).await?;

    // A restart collects at once what no agreement of this chain and contract owns.
    stack.kill_backend()?;
    stack.start_backend().await?;
    eventually("the orphan pod and Service collected", || async {
        Ok(pods.get_opt("conference-4242").await?.is_none()
            && clusters.services(0).get_opt("conference-4244").await?.is_none())
    })
    .await?;
    assert!(pods.get_opt("conference-4243").await?.is_some(), "another contract's pod is not ours to remove");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_warm_pool_hands_over_a_ready_pod_and_refills() -> Result<()> {
    // Pods take 2 s to "start" here: the hand-over must not wait for one.
    let clusters = KubeClusters::start("k8s-warm", &eu_and_us(1)[..1], Duration::from_secs(2)).await?;
    let stack = clusters.stack("k8s-warm").await?;
    let ready_warm = || async {
        let warm = clusters.pods_of(0, None).await?;
        Ok::<_, anyhow::Error>(warm.into_iter().find(conference_e2e::kube::pod_ready))
    };
    eventually("a warm pod ready", || async { Ok(ready_warm().await?.is_some()) }).await?;
    let warm = ready_warm().await?.context("a warm pod")?.metadata.name.context("a name")?;

    // A flexible window starting now: its conference is kept warm, from the pool.
    let latest = alloy::eips::BlockNumberOrTag::Latest;
    let now = stack.customer.get_block_by_number(latest).await?.context("a block")?.header.timestamp;
    let (from, to) = (now + 1, now + 3_600);
    let deposit = stack.escrow().quote(FLEXIBLE_TERMS, 0, false, U256::from(to - from)).call().await?.deposit;
    let (id, _) = stack.customer_reserves(FLEXIBLE_TERMS, from, to, deposit).await?;
    stack.wait_for(id, "a running conference", WAIT, |r| r["conference"]["state"] == "running").await?;
    let pods = clusters.pods_of(0, Some(id)).await?;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].metadata.name.as_deref(), Some(warm.as_str()), "the warm pod was handed over");
    eventually("the pool refilled", || async {
        Ok(ready_warm().await?.is_some_and(|p| p.metadata.name.as_deref() != Some(warm.as_str())))
    })
    .await?;
    Ok(())
}

#[test]
fn the_sample_clusters_file_in_deploy_is_one_the_backend_reads() -> Result<()> {
    let config = std::fs::read_to_string(conference_e2e::repo_root().join("deploy/config.yaml"))?;
    let clusters_map = serde_yaml::Deserializer::from_str(&config)
        .map(serde_yaml::Value::deserialize)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|doc| doc["metadata"]["name"] == "conference-clusters")
        .context("the ConfigMap conference-clusters")?;
    let text = clusters_map["data"]["clusters.toml"].as_str().context("clusters.toml")?;
    let file = conference_backend::orchestrator::kubernetes::clusters::ClustersFile::parse(text)
        .map_err(anyhow::Error::msg)?;
    assert_eq!(file.clusters.len(), 1);
    assert_eq!(file.clusters[0].kubeconfig, None, "the sample is the cluster the backend runs in");
    Ok(())
}
