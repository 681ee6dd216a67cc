//! What the reconciler did about each agreement's conference, the probes of it (the evidence behind its
//! availability), and the monitor's signed reports.

use sqlx::{Row, any::AnyRow};

use super::{Change, Store, feed, now_wall, stored_seconds};
use crate::{
    Error, Result,
    domain::{
        availability::{Probe, ProbeResult, ProbeTally, Record, Report},
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
        self.committed(Change::Agreement(id)).await;
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
        self.committed(Change::Agreement(id)).await;
        Ok(())
    }

    pub async fn conference_removed(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'removed', removed_wall_at = $1 WHERE id = $2")
            .bind(now_wall())
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        self.committed(Change::Agreement(id)).await;
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
        let lost = lost.rows_affected() == 1;
        if lost {
            self.committed(Change::Agreement(id)).await;
        }
        Ok(lost)
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
            sqlx::query(
                "INSERT INTO probes (agreement_id, session, wall_at, at_ms, ok, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(probe.agreement as i64)
            .bind(probe.session as i64)
            .bind(at)
            .bind(i64::try_from(probe.at_ms).unwrap_or(i64::MAX))
                .bind(probe.ok as i64)
                .bind(probe.detail.as_deref())
                .execute(&mut *tx)
                .await?;
        }
        let changes = feed::coalesce(probes.iter().map(|probe| Change::Agreement(probe.agreement)));
        self.publish(&mut tx, &changes).await?;
        tx.commit().await?;
        changes.into_iter().for_each(|change| self.changed(change));
        Ok(())
    }

    /// Every probe of an agreement, by session, oldest first.
    pub async fn probes_of(&self, id: u64) -> Result<Vec<Probe>> {
        let rows = sqlx::query(
            "SELECT session, wall_at, at_ms, ok, detail FROM probes WHERE agreement_id = $1 \
             ORDER BY session, at_ms, wall_at",
        )
        .bind(id as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Probe {
                session: r.get::<i64, _>("session") as u64,
                at: r.get::<i64, _>("wall_at") as u64,
                at_ms: r.get::<Option<i64>, _>("at_ms").unwrap_or_default() as u64,
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

    /// The evidence records of an agreement's conference `session`: its probes on the chain's clock, in
    /// the order taken (probes stored before they carried that time are left out).
    pub async fn probe_records(&self, id: u64, session: u64) -> Result<Vec<Record>> {
        let rows = sqlx::query(
            "SELECT at_ms, ok FROM probes WHERE agreement_id = $1 AND session = $2 AND at_ms IS NOT NULL ORDER BY at_ms",
        )
        .bind(id as i64)
        .bind(session as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| Record { at_ms: r.get::<i64, _>(0) as u64, ok: r.get::<i64, _>(1) != 0 }).collect())
    }

    /// When the latest probe of the agreement's conference `session` was taken (chain clock, ms).
    pub async fn last_probe_ms(&self, id: u64, session: u64) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT MAX(at_ms) FROM probes WHERE agreement_id = $1 AND session = $2")
            .bind(id as i64)
            .bind(session as i64)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<Option<i64>, _>(0).map(|v| v as u64))
    }

    /// Keeps a monitor's signed report (checked by the caller); the first one for a conference counts.
    /// Returns whether it was new.
    pub async fn record_report(&self, report: &Report) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO reports (agreement_id, session, started_at, ended_at, availability_bps, evidence, signature, \
             records, received_wall_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (agreement_id, session) DO NOTHING",
        )
        .bind(report.agreement as i64)
        .bind(i64::from(report.session))
        .bind(stored_seconds(report.started_at)?)
        .bind(stored_seconds(report.ended_at)?)
        .bind(i64::from(report.availability_bps))
        .bind(report.evidence.to_string())
        .bind(report.signature.to_string())
        .bind(serde_json::json!({ "intervalMs": report.interval_ms, "records": report.records }).to_string())
        .bind(now_wall())
        .execute(&self.pool)
        .await?;
        let new = inserted.rows_affected() == 1;
        if new {
            self.committed(Change::Agreement(report.agreement)).await;
        }
        Ok(new)
    }

    /// The report kept for the agreement's chain session `session`, if any.
    pub async fn report(&self, id: u64, session: u32) -> Result<Option<Report>> {
        let row = sqlx::query("SELECT * FROM reports WHERE agreement_id = $1 AND session = $2")
            .bind(id as i64)
            .bind(i64::from(session))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(report_from_row).transpose()
    }

    /// Every report kept about the agreements of terms whose monitor is `monitor` (lowercase), newest
    /// first, at most `limit`.
    pub async fn reports_by(&self, monitor: &str, limit: u32) -> Result<Vec<Report>> {
        let rows = sqlx::query(
            "SELECT r.* FROM reports r JOIN agreements a ON a.id = r.agreement_id JOIN terms t ON t.id = a.terms_id \
             WHERE t.monitor = $1 ORDER BY r.received_wall_at DESC, r.agreement_id DESC LIMIT $2",
        )
        .bind(monitor)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(report_from_row).collect()
    }
}

fn report_from_row(r: &AnyRow) -> Result<Report> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("stored report: {what}: {e}"));
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Evidence {
        interval_ms: u64,
        records: Vec<Record>,
    }
    let evidence: Evidence = serde_json::from_str(&r.get::<String, _>("records")).map_err(|e| bad("records", &e))?;
    Ok(Report {
        interval_ms: evidence.interval_ms,
        records: evidence.records,
        agreement: r.get::<i64, _>("agreement_id") as u64,
        session: r.get::<i64, _>("session") as u32,
        started_at: r.get::<i64, _>("started_at") as u64,
        ended_at: r.get::<i64, _>("ended_at") as u64,
        availability_bps: r.get::<i64, _>("availability_bps") as u16,
        evidence: r.get::<String, _>("evidence").parse().map_err(|e| bad("evidence", &e))?,
        signature: r.get::<String, _>("signature").parse().map_err(|e| bad("signature", &e))?,
    })
}
