-- Expired sign-in nonces and sessions are purged on a timer (every minute), not only when a nonce is
-- issued, and the number outstanding is counted before each nonce: both look rows up by `expires_at`.
CREATE INDEX siwe_nonces_expires_at ON siwe_nonces (expires_at);
CREATE INDEX siwe_sessions_expires_at ON siwe_sessions (expires_at);
