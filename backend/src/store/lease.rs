//! The leader lease among replicas sharing a database, on the database's own clock (see
//! [`crate::lease`] for the protocol).

use sqlx::Row;

use super::{Dialect, Store};
use crate::Result;

impl Store {
    /// Takes the lease `name` for `holder` for `ttl_ms`, or renews it, if it is free, expired or already
    /// `holder`'s: one atomic statement, so two replicas can never both hold it. Returns the lease's term
    /// (it grows with every change of holder) if `holder` holds it now.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<Option<u64>> {
        // Expiry is measured by the database's clock, the one clock every replica shares.
        let now = self.now_ms().await? as i64;
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at_ms, term) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms, \
             term = leases.term + CASE WHEN leases.holder = excluded.holder THEN 0 ELSE 1 END \
             WHERE leases.holder = excluded.holder OR leases.expires_at_ms < $4 RETURNING term",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms as i64)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// Gives the lease up at once (a graceful shutdown), so that another replica need not wait for it
    /// to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The database's clock, in milliseconds since the epoch.
    pub async fn now_ms(&self) -> Result<u64> {
        let query = match self.dialect {
            Dialect::Sqlite => "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        };
        let row = sqlx::query(query).fetch_one(&self.pool).await?;
        Ok(row.get::<i64, _>(0) as u64)
    }
}
