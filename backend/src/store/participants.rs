//! Who may join an agreement's conference, and in what quality: the customer's registration.

use alloy::primitives::Address;
use sqlx::Row;

use super::{Change, Store, now_wall, stored_seconds};
use crate::{
    Error, Result,
    domain::conference::{ConferenceSettings, lowercase},
};

impl Store {
    /// Replaces the agreement's registration (its quality and the whole participant list, in the order
    /// given) with `settings`, made by `registered_by` (the customer's signed-in session), if it is not
    /// older (an `issued_at` at least the stored one's: the later of two in one second wins) than the one
    /// stored, in one transaction. Returns false, changing nothing, if it is older.
    pub async fn register_participants(
        &self,
        agreement: u64,
        settings: &ConferenceSettings,
        registered_by: Address,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        // One statement decides: concurrent registrations serialize on the row, and only a newer one writes.
        let newer = sqlx::query(
            "INSERT INTO conference_settings (agreement_id, quality, issued_at, signature, received_wall_at, \
             registered_by) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agreement_id) DO UPDATE SET \
             quality = excluded.quality, issued_at = excluded.issued_at, signature = excluded.signature, \
             received_wall_at = excluded.received_wall_at, registered_by = excluded.registered_by \
             WHERE conference_settings.issued_at <= excluded.issued_at",
        )
        .bind(agreement as i64)
        .bind(settings.quality.as_str())
        .bind(stored_seconds(settings.issued_at)?)
        // No EIP-712 signature any more (the column predates sessions): the session's address is the evidence.
        .bind(Vec::<u8>::new())
        .bind(now_wall())
        .bind(lowercase(registered_by))
        .execute(&mut *tx)
        .await?;
        if newer.rows_affected() != 1 {
            // At once, not when the dropped transaction's connection is next used: SQLite holds its write
            // lock until then, and another writer (the watcher) would find the database locked.
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM participants WHERE agreement_id = $1")
            .bind(agreement as i64)
            .execute(&mut *tx)
            .await?;
        for (position, (address, region)) in settings.participants.iter().enumerate() {
            sqlx::query("INSERT INTO participants (agreement_id, address, region, position) VALUES ($1, $2, $3, $4)")
                .bind(agreement as i64)
                .bind(lowercase(*address))
                .bind(*region as i64)
                .bind(position as i64)
                .execute(&mut *tx)
                .await?;
        }
        self.publish(&mut tx, &[Change::Agreement(agreement)]).await?;
        tx.commit().await?;
        self.changed(Change::Agreement(agreement));
        Ok(true)
    }

    /// The agreement's registration (quality, participants with their regions, when the customer signed
    /// it), if the customer registered any.
    pub async fn conference_settings(&self, agreement: u64) -> Result<Option<ConferenceSettings>> {
        let Some(row) = sqlx::query("SELECT quality, issued_at FROM conference_settings WHERE agreement_id = $1")
            .bind(agreement as i64)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query("SELECT address, region FROM participants WHERE agreement_id = $1 ORDER BY position")
            .bind(agreement as i64)
            .fetch_all(&self.pool)
            .await?;
        let participants = rows
            .iter()
            .map(|r| {
                let address: String = r.get(0);
                let address = address.parse().map_err(|e| {
                    Error::Config(format!("stored participant {address:?} of agreement {agreement}: {e}"))
                })?;
                Ok((address, r.get::<i64, _>(1) as u8))
            })
            .collect::<Result<_>>()?;
        Ok(Some(ConferenceSettings {
            quality: row.get::<String, _>(0).parse()?,
            participants,
            issued_at: row.get::<i64, _>(1) as u64,
        }))
    }

    /// Whether `address` is among the agreement's registered participants.
    pub async fn is_participant(&self, agreement: u64, address: Address) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM participants WHERE agreement_id = $1 AND address = $2")
            .bind(agreement as i64)
            .bind(lowercase(address))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}
