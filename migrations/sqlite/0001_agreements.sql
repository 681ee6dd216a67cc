-- The backend's view of the escrow contract and of its own work. Amounts in wei are decimal TEXT
-- (they do not fit in 64 bits); times are unix seconds of chain blocks unless named *_wall_at.

-- Where the chain watcher resumes: the next block to read. One row.
CREATE TABLE chain_cursor (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    next_block     INTEGER NOT NULL,
    -- The newest block's timestamp the watcher saw: chain time, for "running for" figures.
    head_timestamp INTEGER NOT NULL
);

-- Offers as published on-chain (immutable there, so copied once).
CREATE TABLE offers (
    id               INTEGER PRIMARY KEY,
    provider         TEXT    NOT NULL,
    price_per_second TEXT    NOT NULL,
    max_duration     INTEGER NOT NULL,
    retired          INTEGER NOT NULL DEFAULT 0
);

-- One row per agreement. The chain_* and on-chain columns are written only by the watcher from
-- events; the conference_* columns only by the reconciler from what the orchestrator did.
CREATE TABLE agreements (
    id               INTEGER PRIMARY KEY,
    offer_id         INTEGER NOT NULL REFERENCES offers (id),
    customer         TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    price_per_second TEXT    NOT NULL,
    max_duration     INTEGER NOT NULL,
    deposit          TEXT    NOT NULL,
    chain_status     TEXT    NOT NULL CHECK (chain_status IN ('signed', 'active', 'ended', 'settled', 'refunded')),
    signed_at        INTEGER NOT NULL,
    sign_tx          TEXT    NOT NULL,
    started_at       INTEGER,
    activate_tx      TEXT,
    ended_at         INTEGER,
    end_tx           TEXT,
    availability_bps INTEGER,
    charge           TEXT,
    refund           TEXT,
    refund_deferred  INTEGER,
    refund_reason    TEXT CHECK (refund_reason IN ('cancelledByCustomer', 'declinedByOperator', 'activationTimedOut')),
    settle_tx        TEXT,

    conference_state TEXT    NOT NULL DEFAULT 'absent'
                     CHECK (conference_state IN ('absent', 'deploying', 'running', 'removed')),
    join_url         TEXT,
    deploy_count     INTEGER NOT NULL DEFAULT 0,
    deployed_wall_at INTEGER,
    removed_wall_at  INTEGER
);

CREATE INDEX agreements_open ON agreements (chain_status, conference_state);

-- Every probe of a running conference: the evidence behind the availability reported at settlement.
CREATE TABLE probes (
    agreement_id INTEGER NOT NULL REFERENCES agreements (id),
    wall_at      INTEGER NOT NULL,
    ok           INTEGER NOT NULL CHECK (ok IN (0, 1)),
    detail       TEXT
);

CREATE INDEX probes_by_agreement ON probes (agreement_id);

-- Transactions the operator means to send, each exactly once: a row is signed and stored (nonce,
-- hash, raw bytes) before it is broadcast, so a restart re-broadcasts the same transaction instead
-- of making a second one.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    agreement_id  INTEGER NOT NULL REFERENCES agreements (id),
    call          TEXT    NOT NULL CHECK (call IN ('activate', 'end', 'settle')),
    argument      INTEGER,
    state         TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'done', 'failed')),
    nonce         INTEGER,
    tx_hash       TEXT,
    raw_tx        BLOB,
    outcome       TEXT,
    created_wall_at INTEGER NOT NULL,
    UNIQUE (agreement_id, call)
);
