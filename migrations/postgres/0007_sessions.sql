-- Sign-In with Ethereum (EIP-4361): the web app's sessions, stored so that every replica knows them.
-- A nonce is handed out by `POST /api/siwe/nonce`, used once (deleted when a sign-in consumes it) and
-- void after `expires_at` (unix seconds); expired rows are purged lazily.
CREATE TABLE siwe_nonces (
    nonce      TEXT    PRIMARY KEY,
    expires_at BIGINT  NOT NULL
);

-- A signed-in session: only the keccak-256 of its cookie's random token is kept (hex with 0x), never the
-- token itself. `address` (lowercase hex with 0x) is who signed the message; the session lasts until
-- the message's expiration time, `expires_at` (unix seconds).
CREATE TABLE siwe_sessions (
    token_hash TEXT    PRIMARY KEY,
    address    TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);

-- Registrations are now made by the customer's signed-in session, not by an EIP-712 signature: the
-- address of that session is the evidence (NULL for the older, signed registrations, whose `signature`
-- is kept; newer ones store an empty `signature`).
ALTER TABLE conference_settings ADD COLUMN registered_by TEXT;
