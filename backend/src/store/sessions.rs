//! Sign-In with Ethereum: nonces (single use) and signed-in sessions (by the hash of their token).

use alloy::primitives::Address;
use sqlx::Row;

use super::{Store, now_wall, stored_seconds};
use crate::{Error, Result, domain::conference::lowercase};

/// What a sign-in found of its nonce when it used it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    /// Issued, unused and unexpired: now used.
    Consumed,
    /// Issued but expired (now deleted).
    Expired,
    /// Never issued, or used already.
    Unknown,
}

impl Store {
    /// Stores a Sign-In with Ethereum nonce until `expires_at` (unix seconds), unless `max_outstanding`
    /// unexpired nonces are stored already (one statement counts and inserts). Returns whether it was
    /// stored.
    pub async fn create_siwe_nonce(&self, nonce: &str, expires_at: u64, max_outstanding: u64) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO siwe_nonces (nonce, expires_at) SELECT $1, $2 \
             WHERE (SELECT COUNT(*) FROM siwe_nonces WHERE expires_at > $3) < $4",
        )
        .bind(nonce)
        .bind(stored_seconds(expires_at)?)
        .bind(now_wall())
        .bind(stored_seconds(max_outstanding)?)
        .execute(&self.writer)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Deletes the nonces and sessions that expired by `now` (unix seconds): the purge timer's work.
    /// Returns how many rows went.
    pub async fn purge_expired_signins(&self, now: u64) -> Result<u64> {
        let now = stored_seconds(now)?;
        let nonces =
            sqlx::query("DELETE FROM siwe_nonces WHERE expires_at <= $1").bind(now).execute(&self.writer).await?;
        let sessions =
            sqlx::query("DELETE FROM siwe_sessions WHERE expires_at <= $1").bind(now).execute(&self.writer).await?;
        Ok(nonces.rows_affected() + sessions.rows_affected())
    }

    /// Uses up a nonce, atomically (one statement deletes it: of two sign-ins with it, one gets it): what
    /// it was. An expired nonce is deleted too.
    pub async fn consume_siwe_nonce(&self, nonce: &str, now: u64) -> Result<NonceUse> {
        let row = sqlx::query("DELETE FROM siwe_nonces WHERE nonce = $1 RETURNING expires_at")
            .bind(nonce)
            .fetch_optional(&self.writer)
            .await?;
        Ok(match row.map(|r| r.get::<i64, _>(0) as u64) {
            None => NonceUse::Unknown,
            Some(expires_at) if expires_at <= now => NonceUse::Expired,
            Some(_) => NonceUse::Consumed,
        })
    }

    /// Stores a signed-in session: the hash of its token, who signed in, until when (unix seconds).
    pub async fn create_siwe_session(&self, token_hash: &str, address: Address, expires_at: u64) -> Result<()> {
        sqlx::query("INSERT INTO siwe_sessions (token_hash, address, expires_at, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(lowercase(address))
            .bind(stored_seconds(expires_at)?)
            .bind(now_wall())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The session whose token hashes to `token_hash`, if it has not expired at `now`: its address and
    /// when it expires.
    pub async fn siwe_session(&self, token_hash: &str, now: u64) -> Result<Option<(Address, u64)>> {
        let row =
            sqlx::query("SELECT address, expires_at FROM siwe_sessions WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(stored_seconds(now)?)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let address: String = r.get(0);
            let address =
                address.parse().map_err(|e| Error::Config(format!("stored session address {address:?}: {e}")))?;
            Ok((address, r.get::<i64, _>(1) as u64))
        })
        .transpose()
    }

    /// Ends a session (signing out); nothing if there is none.
    pub async fn delete_siwe_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM siwe_sessions WHERE token_hash = $1").bind(token_hash).execute(&self.writer).await?;
        Ok(())
    }
}
