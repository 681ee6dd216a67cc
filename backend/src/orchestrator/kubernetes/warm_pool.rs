//! The warm pools: idle conference pods kept ready in each cluster (`warm_pool` of the clusters file),
//! each with its media Service and the address it advertises, handed over to an agreement whose
//! conference should start fast, and refilled after.

use std::sync::atomic::Ordering;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use tracing::{info, warn};

use super::{
    Cluster, KubernetesOrchestrator, conference_annotations, gone_if_missing, is_ready, is_status, kube_error, label,
    millicores_of, sizing_of,
};
use crate::{
    Result,
    domain::conference::{Conference, Quality},
    orchestrator::jitsi_pod::{AGREEMENT, POD, POOL, ROLE, Sizing},
};

impl KubernetesOrchestrator {
    /// Background upkeep: counts each cluster's load, keeps its warm pool at size, removes media
    /// Services whose pod is gone, and reads the latency table again if the clusters file changed.
    /// One list of each cluster's pods serves all.
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
                self.delete_pod(cluster, &name, &DeleteParams::default()).await?;
                info!(cluster = cluster.config.name, pod = name, "surplus warm pod deleted");
                cluster.used_millicores.fetch_sub(millicores_of(pod).unwrap_or(0), Ordering::Relaxed);
            }
            self.collect_media_services(cluster, &pods).await?;
        }
        Ok(())
    }

    /// Deletes the media Services of pods that are gone (a pod deleted by hand, or a start that
    /// crashed between the Service and the pod). A Service younger than the start timeout may still
    /// be waiting for its address before its pod is made, and is left alone.
    async fn collect_media_services(&self, cluster: &Cluster, pods: &[Pod]) -> Result<()> {
        let params = ListParams::default().labels(&self.owner.selector(&format!("{ROLE}=media")));
        let services = cluster.services.list(&params).await.map_err(|e| kube_error("listing media Services", e))?;
        let now = k8s_openapi::jiff::Timestamp::now();
        let young = std::time::Duration::from_secs(self.settings.start_timeout_secs);
        for service in services.items {
            let pod = service.metadata.labels.as_ref().and_then(|l| l.get(POD)).cloned().unwrap_or_default();
            let has_pod = pods.iter().any(|p| p.metadata.name.as_deref() == Some(pod.as_str()));
            let age = service.metadata.creation_timestamp.as_ref().map(|t| now.duration_since(t.0));
            let old = age.is_some_and(|age| age.as_secs() >= 0 && age.unsigned_abs() >= young);
            if has_pod || !old {
                continue;
            }
            let name = service.metadata.name.unwrap_or_default();
            gone_if_missing(
                cluster.services.delete(&name, &DeleteParams::default()).await.map(|_| ()),
                "deleting a media Service",
            )?;
            info!(cluster = cluster.config.name, service = name, "media Service of a pod that is gone deleted");
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
    /// The pod handed over, if one was.
    pub(super) async fn hand_over_warm_pod(
        &self,
        cluster: &Cluster,
        conference: &Conference,
        sizing: &Sizing,
    ) -> Result<Option<Pod>> {
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
                Ok(handed) => {
                    info!(
                        agreement = conference.agreement,
                        cluster = cluster.config.name,
                        pod = name,
                        "warm pod handed over"
                    );
                    self.pool_drawn.notify_one();
                    return Ok(Some(handed));
                }
                // Taken or changed meanwhile: try the next one.
                Err(err) if is_status(&err, 409) => continue,
                Err(err) => return Err(kube_error("handing over a warm pod", err)),
            }
        }
        Ok(None)
    }
}
