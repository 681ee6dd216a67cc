//! What the reconciler did about each agreement's conference, the probes of it (the evidence behind its
//! availability), and the monitor's signed reports.

use sqlx::{Row, any::AnyRow};

use super::{Change, Store, feed, now_wall, stored_seconds};
use crate::{
    Error, Result,
    domain::{
        agreement::{ChainStatus, ConferenceState},
        availability::{Probe, ProbeResult, ProbeTally, Record, Report},
        conference::Deployed,
    },
};

/// Probes written by one `INSERT` (six parameters each): SQLite's driver looks each numbered parameter
/// up by name, so a statement's cost grows with the square of its parameters; 32 rows keep that small.
const PROBES_PER_INSERT: usize = 32;

/// A conference the monitor owes probes, as [`Store::watched_conferences`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub agreement: u64,
    pub session: u64,
    pub chain_status: ChainStatus,
    pub conference_state: ConferenceState,
    /// Unix seconds its slots count from: the conference's start, or the window's for a warm one.
    pub slots_from: u64,
    pub customer: String,
    /// The terms' independent monitor, if they name one.
    pub monitor: Option<String>,
    /// Whether a stop of the agreement's current session is signed (of another conference: this one
    /// is still owed).
    pub stop_signed: bool,
}

impl Store {
    /// Marks a deploy as started, before the orchestrator is asked, so a crash leaves a trace.
    pub async fn conference_deploying(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'deploying' WHERE id = $1")
            .bind(id as i64)
            .execute(&self.writer)
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
        .execute(&self.writer)
        .await?;
        self.committed(Change::Agreement(id)).await;
        Ok(())
    }

    pub async fn conference_removed(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'removed', removed_wall_at = $1 WHERE id = $2")
            .bind(now_wall())
            .bind(id as i64)
            .execute(&self.writer)
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
        .execute(&self.writer)
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

    /// The conferences the monitor owes a probe per slot, in its narrow columns only (it reads them every
    /// pass, a few times a slot, with thousands running): each active agreement's, unless its customer
    /// signed a stop of it (from the signed time on it is not owed), and the warm conference of a
    /// FlexiblePeriod window. Rows are streamed into the narrow values, never held whole.
    pub async fn watched_conferences(&self) -> Result<Vec<Watched>> {
        use futures::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT a.id, a.session, a.chain_status, a.conference_state, a.customer, t.monitor, \
             CASE WHEN a.chain_status = 'idle' THEN a.window_from ELSE a.started_at END AS slots_from, \
             CAST(CASE WHEN s.started_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS stop_signed \
             FROM agreements a LEFT JOIN signed_stops s ON s.agreement_id = a.id AND s.session = a.session \
             LEFT JOIN terms t ON t.id = a.terms_id \
             WHERE (a.chain_status = 'active' AND (s.started_at IS NULL OR s.started_at <> a.started_at) \
                    OR a.chain_status = 'idle' AND a.model = 'flexiblePeriod' AND a.conference_state = 'running') \
             ORDER BY a.id",
        )
        .fetch(&self.pool);
        let mut watched = Vec::new();
        while let Some(r) = rows.try_next().await? {
            let Some(slots_from) = r.get::<Option<i64>, _>("slots_from") else { continue };
            watched.push(Watched {
                agreement: r.get::<i64, _>("id") as u64,
                session: r.get::<i64, _>("session") as u64,
                chain_status: r.get::<String, _>("chain_status").parse()?,
                conference_state: r.get::<String, _>("conference_state").parse()?,
                slots_from: slots_from as u64,
                customer: r.get("customer"),
                monitor: r.get("monitor"),
                stop_signed: r.get::<i64, _>("stop_signed") != 0,
            });
        }
        Ok(watched)
    }

    /// Stores a pass's probes in one transaction: one write to the disk per pass, however many
    /// conferences run (a transaction per probe made the monitor the store's busiest writer).
    pub async fn record_probes(&self, probes: &[ProbeResult]) -> Result<()> {
        if probes.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        let at = now_wall();
        // Many rows a statement: one parse and one round trip for each chunk, not for each probe.
        for chunk in probes.chunks(PROBES_PER_INSERT) {
            let mut sql =
                String::from("INSERT INTO probes (agreement_id, session, wall_at, at_ms, ok, detail) VALUES ");
            for i in 0..chunk.len() {
                let n = i * 6;
                let sep = if i == 0 { "" } else { ", " };
                sql.push_str(&format!("{sep}(${}, ${}, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4, n + 5, n + 6));
            }
            // A full chunk's statement is kept prepared; a pass's remainder (another length each time)
            // is not, or every length would stay cached on every connection.
            // Safe: the text holds only the numbered placeholders written above; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() == PROBES_PER_INSERT);
            for probe in chunk {
                query = query
                    .bind(probe.agreement as i64)
                    .bind(probe.session as i64)
                    .bind(at)
                    .bind(i64::try_from(probe.at_ms).unwrap_or(i64::MAX))
                    .bind(probe.ok as i64)
                    .bind(probe.detail.as_deref());
            }
            query.execute(&mut *tx).await?;
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
        .execute(&self.writer)
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
