//! The warm pools: idle conference pods kept ready in each cluster (`warm_pool` of the clusters file),
//! handed over to an agreement whose conference should start fast, and refilled after.

use std::sync::atomic::Ordering;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use tracing::{info, warn};

use super::{
    Cluster, KubernetesOrchestrator, conference_annotations, is_ready, is_status, kube_error, label, millicores_of,
    sizing_of,
};
use crate::{
    Result,
    domain::conference::{Conference, Quality},
    orchestrator::jitsi_pod::{AGREEMENT, POOL, Sizing},
};

impl KubernetesOrchestrator {
    /// Background upkeep: counts each cluster's load, keeps its warm pool at size, and reads the
    /// latency table again if the clusters file changed. One list of each cluster's pods serves all.
    pub async fn maintain(&self) -> Result<()> {
        self.reload_latency();
        for cluster in &self.clusters {
            let pods = self.pods_of(cluster, "").await?;
            cluster.used_millicores.store(pods.iter().filter_map(millicores_of).sum(), Ordering::Relaxed);
            let warm: Vec<&Pod> = pods.iter().filter(|p| label(p, POOL) == Some("warm")).collect();
            let want = cluster.config.warm_pool as usize;
            let sizing = self.warm_sizing(cluster);
            for _ in warm.len()..want {
                // Idle pods never take the room a paid conference needs.
                let used = cluster.used_millicores.load(Ordering::Relaxed);
                if used + sizing.pod_millicores() > cluster.config.capacity_millicores {
                    warn!(cluster = cluster.config.name, used, "no room for another warm pod");
                    break;
                }
                let name = format!("conference-warm-{}", alloy::hex::encode(rand::random::<[u8; 4]>()));
                self.create_pod(cluster, None, &name, &sizing).await?;
                info!(cluster = cluster.config.name, pod = name, "warm pod created");
            }
            for pod in warm.iter().skip(want) {
                let name = pod.metadata.name.clone().unwrap_or_default();
                match cluster.pods.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => info!(cluster = cluster.config.name, pod = name, "surplus warm pod deleted"),
                    Err(err) if is_status(&err, 404) => {}
                    Err(err) => return Err(kube_error("deleting a surplus warm pod", err)),
                }
                cluster.used_millicores.fetch_sub(millicores_of(pod).unwrap_or(0), Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn warm_sizing(&self, cluster: &Cluster) -> Sizing {
        let participants = cluster.config.warm_participants.unwrap_or(self.settings.default_participants);
        Sizing { participants, stream_kbps: Quality::default().stream_kbps() }
    }

    /// Hands a ready warm pod big enough for the conference over to it: the pod is relabelled with
    /// the agreement, on the condition that nobody changed it since it was read, so two hand-overs
    /// can never take the same pod.
    /// The name of the pod handed over, if one was.
    pub(super) async fn hand_over_warm_pod(
        &self,
        cluster: &Cluster,
        conference: &Conference,
        sizing: &Sizing,
    ) -> Result<Option<String>> {
        for pod in self.pods_of(cluster, &format!("{POOL}=warm")).await? {
            // Sized as its annotations say (the pool's size may have been changed since it was made).
            let warm_sizing = sizing_of(&pod).unwrap_or_else(|| self.warm_sizing(cluster));
            if !is_ready(&pod) || !warm_sizing.covers(sizing) {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            let mut annotations = serde_json::Map::new();
            for (key, value) in conference_annotations(conference) {
                annotations.insert(key, value.into());
            }
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": pod.metadata.resource_version,
                    "labels": { POOL: null, AGREEMENT: conference.agreement.to_string() },
                    "annotations": annotations,
                }
            });
            match cluster.pods.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    info!(
                        agreement = conference.agreement,
                        cluster = cluster.config.name,
                        pod = name,
                        "warm pod handed over"
                    );
                    self.pool_drawn.notify_one();
                    return Ok(Some(name));
                }
                // Taken or changed meanwhile: try the next one.
                Err(err) if is_status(&err, 409) => continue,
                Err(err) => return Err(kube_error("handing over a warm pod", err)),
            }
        }
        Ok(None)
    }
}
