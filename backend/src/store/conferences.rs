//! What the reconciler did about each agreement's conference, and the monitor's probes of it.

use sqlx::Row;

use super::{Change, Store, now_wall};
use crate::{
    Result,
    domain::{
        availability::{Probe, ProbeResult, ProbeTally},
        conference::Deployed,
    },
};

impl Store {
    /// Marks a deploy as started, before the orchestrator is asked, so a crash leaves a trace.
    pub async fn conference_deploying(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'deploying' WHERE id = $1")
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        self.changed(Change::Agreement(id));
        Ok(())
    }

    /// Records a running conference and where it runs; `fresh` counts it as a new deployment (not an
    /// adopted one).
    pub async fn conference_running(&self, id: u64, deployed: &Deployed) -> Result<()> {
        sqlx::query(
            "UPDATE agreements SET conference_state = 'running', join_url = $1, conference_region = $2, \
             deploy_count = deploy_count + $3, deployed_wall_at = COALESCE(deployed_wall_at, $4) WHERE id = $5",
        )
        .bind(&deployed.join_url)
        .bind(i64::from(deployed.region))
        .bind(deployed.fresh as i64)
        .bind(now_wall())
        .bind(id as i64)
        .execute(&self.pool)
        .await?;
        self.changed(Change::Agreement(id));
        Ok(())
    }

    pub async fn conference_removed(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'removed', removed_wall_at = $1 WHERE id = $2")
            .bind(now_wall())
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        self.changed(Change::Agreement(id));
        Ok(())
    }

    /// Records a running conference as lost (its server exited or stops answering), so that the
    /// reconciler deploys it again; false when it was no longer recorded as running (removed or being
    /// deployed meanwhile), changing nothing.
    pub async fn conference_lost(&self, id: u64) -> Result<bool> {
        let lost = sqlx::query(
            "UPDATE agreements SET conference_state = 'removed' WHERE id = $1 AND conference_state = 'running'",
        )
        .bind(id as i64)
        .execute(&self.pool)
        .await?;
        Ok(lost.rows_affected() == 1)
    }

    /// Conferences the store records as running (the conferences-running gauge).
    pub async fn conferences_running(&self) -> Result<u64> {
        let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM agreements WHERE conference_state = $1")
            .bind("running")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>(0) as u64)
    }

    /// Stores a pass's probes in one transaction: one write to the disk per pass, however many
    /// conferences run (a transaction per probe made the monitor the store's busiest writer).
    pub async fn record_probes(&self, probes: &[ProbeResult]) -> Result<()> {
        if probes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let at = now_wall();
        for probe in probes {
            sqlx::query("INSERT INTO probes (agreement_id, session, wall_at, ok, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(probe.agreement as i64)
                .bind(probe.session as i64)
                .bind(at)
                .bind(probe.ok as i64)
                .bind(probe.detail.as_deref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        probes.iter().for_each(|probe| self.changed(Change::Agreement(probe.agreement)));
        Ok(())
    }

    /// Every probe of an agreement, by session, oldest first.
    pub async fn probes_of(&self, id: u64) -> Result<Vec<Probe>> {
        let rows = sqlx::query(
            "SELECT session, wall_at, ok, detail FROM probes WHERE agreement_id = $1 ORDER BY session, wall_at",
        )
        .bind(id as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Probe {
                session: r.get::<i64, _>("session") as u64,
                at: r.get::<i64, _>("wall_at") as u64,
                ok: r.get::<i64, _>("ok") != 0,
                detail: r.get("detail"),
            })
            .collect())
    }

    pub async fn probe_tally(&self, id: u64, session: u64) -> Result<ProbeTally> {
        let row =
            sqlx::query("SELECT COUNT(*), CAST(COALESCE(SUM(ok), 0) AS BIGINT) FROM probes WHERE agreement_id = $1 AND session = $2")
                .bind(id as i64)
                .bind(session as i64)
                .fetch_one(&self.pool)
                .await?;
        Ok(ProbeTally { probes: row.get::<i64, _>(0) as u64, probes_ok: row.get::<i64, _>(1) as u64 })
    }
}
