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
use conference_e2e::kube::{ClusterSpec, KubeClusters, Media, TEST_NODE_ADDRESS, videobridge_stats};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::serde::Deserialize;
use kube::api::PostParams;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const FLEXIBLE_TERMS: u32 = 4;
const EU: u8 = 0;
const US: u8 = 1;

/// EU: GDPR-compliant, small, media on node ports. US: not GDPR-compliant, four times the room, media
/// on load balancers.
fn eu_and_us(warm_pool: u32) -> [ClusterSpec; 2] {
    [
        ClusterSpec {
            name: "eu",
            region: EU,
            gdpr: true,
            capacity_millicores: 4_000,
            warm_pool,
            media: Media::NodePort,
        },
        ClusterSpec {
            name: "us",
            region: US,
            gdpr: false,
            capacity_millicores: 16_000,
            warm_pool: 0,
            media: Media::LoadBalancer,
        },
    ]
}

/// A JWT's claims, read without checking it (prosody checks it; the unit tests check that it would).
fn token_claims(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("a JWT has three parts")?;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (mut bits, mut count, mut bytes) = (0u32, 0, Vec::new());
    for c in payload.bytes() {
        let value = alphabet.iter().position(|&a| a == c).context("base64url")? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// A container's variable `name` of `pod`, as its plain value.
fn env_of(pod: &Pod, container: &str, name: &str) -> Option<String> {
    let c = pod.spec.as_ref()?.containers.iter().find(|c| c.name == container)?;
    c.env.as_ref()?.iter().find(|e| e.name == name)?.value.clone()
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
            "conference.escrow/pod": name,
        })
    );
    let host = format!("conference-{id}.us.conference.test");
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
        ("conference.escrow/host", host.clone()),
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
    // 90 HD streams: a 692 MiB heap and 512 MiB beside it; no CPU limit on the videobridge.
    assert_eq!(
        resources("jvb"),
        json!({"requests": {"cpu": "300m", "memory": "1204Mi"}, "limits": {"memory": "1204Mi"}})
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

    // The media: a UDP load balancer of the pod's own, whose address the pod was created with.
    let media = clusters.services(us).get(&format!("{name}-media")).await?;
    let media_spec = media.spec.clone().context("a media service spec")?;
    assert_eq!(media_spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(
        serde_json::to_value(&media_spec.ports)?,
        json!([{"name": "jvb", "port": 10000, "protocol": "UDP", "targetPort": "jvb", "nodePort": media_spec.ports.as_ref().unwrap()[0].node_port}])
    );
    let assigned = media.status.and_then(|s| s.load_balancer?.ingress?.first()?.ip.clone()).context("an address")?;
    assert_eq!(env_of(pod, "jvb", "JVB_ADVERTISE_IPS"), Some(assigned.clone()), "the pod advertises its own");
    assert_eq!(env_of(pod, "jvb", "JVB_PORT").as_deref(), Some("10000"));
    assert_eq!(annotations.get("conference.escrow/media"), Some(&format!("{assigned} port 10000/udp")));
    assert_eq!(clusters.media_violations(), Vec::<String>::new(), "no pod before its media address");
    assert_eq!(env_of(pod, "web", "PUBLIC_URL"), Some(format!("https://{host}")));
    assert_eq!(env_of(pod, "prosody", "JWT_ACCEPTED_AUDIENCES").as_deref(), Some(host.as_str()));

    // The web: a cluster-internal Service behind an Ingress on the pod's host, with the certificate.
    let service = clusters.services(us).get(&name).await?;
    assert_eq!(
        labels(&service.metadata),
        labels(&pod.metadata)
            .as_object()
            .map(|l| {
                let mut l = l.clone();
                l.remove("conference.escrow/pod");
                Value::Object(l)
            })
            .unwrap()
    );
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
    assert_eq!(ports, [("http".into(), 80, "TCP".into())]);
    let ingress = clusters.ingresses(us).get(&name).await?;
    assert_eq!(
        serde_json::to_value(ingress.spec)?,
        json!({
            "tls": [{"hosts": [host], "secretName": "wildcard-tls"}],
            "rules": [{"host": host, "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": name, "port": {"number": 80}}},
            }]}}],
        })
    );
    assert_eq!(active["joinUrl"], format!("https://{host}/conference-{id}"), "the join URL is the pod's host");

    // The customer's join token: for this pod's host, as the only moderator.
    let customer_session = stack.sign_in_customer().await?;
    let (status, answer) =
        stack.post_as(&customer_session, &format!("/api/agreements/{id}/join-token"), &json!({})).await?;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().context("a token")?;
    let claims = token_claims(token)?;
    assert_eq!(claims["aud"], host, "bound to this conference's pod");
    assert_eq!(claims["room"], format!("conference-{id}"));
    assert_eq!(claims["context"]["user"]["moderator"], true);

    // The customer stops: the pod and the Service go, and the agreement is settled.
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", WAIT).await?;
    // Charged for the time used at the availability the probes of the pod measured, refunded the
    // rest, to the wei.
    conference_e2e::check_settlement(&settled)?;
    eventually("the pod, its Services and its Ingress removed", || async {
        Ok(clusters.pods(us).get_opt(&name).await?.is_none()
            && clusters.services(us).get_opt(&name).await?.is_none()
            && clusters.services(us).get_opt(&format!("{name}-media")).await?.is_none()
            && clusters.ingresses(us).get_opt(&name).await?.is_none())
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
    // A few seconds of chain time, so that the period's slots hold the probes above (block times are
    // whole seconds: a conference stopped in its first second has one slot, already past).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", WAIT).await?;
    let evidence: Value = reqwest::get(format!("{}/api/agreements/{id}/probes", stack.api)).await?.json().await?;
    let measured = &evidence["sessions"][0]["measurement"];
    let records = measured["records"].as_array().context("records")?;
    assert!(records.iter().any(|r| r["ok"] == false), "the bridge that forwarded nothing was counted down: {evidence}");
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
    // The EU cluster's media are on node ports: the videobridge listens on the one the API server
    // assigned to its Service, and advertises the nodes' addresses.
    let pod_name = pod.metadata.name.clone().context("a name")?;
    let media = clusters.services(0).get(&format!("{pod_name}-media")).await?.spec.context("a spec")?;
    assert_eq!(media.type_.as_deref(), Some("NodePort"));
    let node_port = media.ports.as_ref().and_then(|p| p[0].node_port).context("a node port")?;
    assert!((30_000..=32_767).contains(&node_port), "{node_port}");
    assert_eq!(env_of(pod, "jvb", "JVB_PORT"), Some(node_port.to_string()));
    assert_eq!(env_of(pod, "jvb", "JVB_ADVERTISE_IPS").as_deref(), Some(TEST_NODE_ADDRESS));
    let jvb = pod.spec.as_ref().unwrap().containers.iter().find(|c| c.name == "jvb").unwrap();
    assert_eq!(jvb.ports.as_ref().unwrap()[0].container_port, node_port, "the port the node port targets");

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
    // Pods take 2 s to "start" here: the hand-over must not wait for one. Media on load balancers, so
    // each warm pod waits for its own address before it is made.
    let warm_cluster = ClusterSpec { media: Media::LoadBalancer, ..eu_and_us(1)[0].clone() };
    let clusters = KubeClusters::start("k8s-warm", &[warm_cluster], Duration::from_secs(2)).await?;
    let stack = clusters.stack("k8s-warm").await?;
    let ready_warm = || async {
        let warm = clusters.pods_of(0, None).await?;
        Ok::<_, anyhow::Error>(warm.into_iter().find(conference_e2e::kube::pod_ready))
    };
    eventually("a warm pod ready", || async { Ok(ready_warm().await?.is_some()) }).await?;
    let warm_pod = ready_warm().await?.context("a warm pod")?;
    let warm = warm_pod.metadata.name.clone().context("a name")?;
    // The warm pod carries its media address: its own load balancer's, assigned before it was made.
    let media = clusters.services(0).get(&format!("{warm}-media")).await?;
    let assigned = media.status.and_then(|s| s.load_balancer?.ingress?.first()?.ip.clone()).context("an address")?;
    assert_eq!(env_of(&warm_pod, "jvb", "JVB_ADVERTISE_IPS"), Some(assigned));
    let warm_host = format!("{warm}.eu.conference.test");
    assert_eq!(env_of(&warm_pod, "web", "PUBLIC_URL"), Some(format!("https://{warm_host}")));

    // A flexible window starting now: its conference is kept warm, from the pool.
    let latest = alloy::eips::BlockNumberOrTag::Latest;
    let now = stack.customer.get_block_by_number(latest).await?.context("a block")?.header.timestamp;
    let (from, to) = (now + 1, now + 3_600);
    let deposit = stack.escrow().quote(FLEXIBLE_TERMS, 0, false, U256::from(to - from)).call().await?.deposit;
    let (id, _) = stack.customer_reserves(FLEXIBLE_TERMS, from, to, deposit).await?;
    let running = stack.wait_for(id, "a running conference", WAIT, |r| r["conference"]["state"] == "running").await?;
    let pods = clusters.pods_of(0, Some(id)).await?;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].metadata.name.as_deref(), Some(warm.as_str()), "the warm pod was handed over");
    // Participants reach it at the host it was made for, which its tokens name.
    assert_eq!(running["joinUrl"], format!("https://{warm_host}/conference-{id}"));
    let ingress = clusters.ingresses(0).get(&format!("conference-{id}")).await?;
    let rule_host = ingress.spec.and_then(|s| s.rules?.first()?.host.clone());
    assert_eq!(rule_host, Some(warm_host));
    eventually("the pool refilled", || async {
        Ok(ready_warm().await?.is_some_and(|p| p.metadata.name.as_deref() != Some(warm.as_str())))
    })
    .await?;
    assert_eq!(clusters.media_violations(), Vec::<String>::new(), "no warm pod before its media address");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_that_cannot_carry_a_conference_is_refused_at_start() -> Result<()> {
    let clusters = KubeClusters::start("k8s-refused", &eu_and_us(0)[..1], Duration::ZERO).await?;
    let good = std::fs::read_to_string(&clusters.file)?;
    let refused = |why: &'static str| {
        let stack = clusters.stack("k8s-refused");
        async move {
            let error = match stack.await {
                Ok(_) => anyhow::bail!("the backend started; expected it to refuse ({why})"),
                Err(error) => format!("{error:#}"),
            };
            ensure!(error.contains("exited"), "not a refusal at start: {error}");
            ensure!(error.contains(why), "the refusal does not say {why:?}: {error}");
            Ok(())
        }
    };

    // Media on node ports with no node address to advertise: the bridge would offer its pod address.
    std::fs::write(&clusters.file, good.replace(&format!("node_addresses = [\"{TEST_NODE_ADDRESS}\"]"), ""))?;
    refused("media type NodePort needs node_addresses").await?;
    // The old single Service, which mixed TCP and UDP.
    std::fs::write(&clusters.file, good.replace("warm_pool = 0", "warm_pool = 0\nservice_type = \"LoadBalancer\""))?;
    refused("service_type was replaced by [cluster.web]").await?;

    // A Role from before Ingresses: the API server itself says the backend may not create them.
    std::fs::write(&clusters.file, &good)?;
    let roles = kube::Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(clusters.admins[0].clone(), "conferences");
    let rules = json!({"rules": [
        {"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch", "create", "delete", "patch"]},
    ]});
    roles.patch("conference-backend", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&rules)).await?;
    refused("may not create ingresses in namespace conferences: apply deploy/rbac.yaml").await?;
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
