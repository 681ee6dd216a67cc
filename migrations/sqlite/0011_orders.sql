-- Customer accounts: conferences opened from an account by a signed EIP-712 order, and the operator's
-- calls sent in batches (`batch(bytes[])`, one transaction for many calls).
--
-- orders: each order the API accepted (checked against the chain, nothing stored otherwise), until the
-- chain opens it (`OrderFilled`: status 'opened' and its agreement) or refuses it (status 'failed' and the
-- decoded reason). `lock` is what it locks in the account (wei, decimal), counted against the free balance
-- while the order is pending. `batch_id`/`batch_index`: the batch that carries its `openOrder` once sent.
CREATE TABLE orders (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    customer         TEXT    NOT NULL,
    nonce            TEXT    NOT NULL,
    terms_id         INTEGER NOT NULL,
    allowed_regions  INTEGER NOT NULL,
    gdpr             INTEGER NOT NULL CHECK (gdpr IN (0, 1)),
    max_cost         TEXT    NOT NULL,
    deadline         INTEGER NOT NULL,
    signature        TEXT    NOT NULL,
    token_id         INTEGER NOT NULL,
    lock             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'opened', 'failed')),
    agreement_id     INTEGER,
    reason           TEXT,
    batch_id         INTEGER,
    batch_index      INTEGER,
    received_wall_at INTEGER NOT NULL,
    UNIQUE (customer, nonce)
);
CREATE INDEX orders_pending ON orders (status, customer);

-- One operator transaction `batch(bytes[])`: its calls are the outbox rows and orders that name it. Every
-- transaction signed for it (the first, fee bumps of its nonce) is kept in `batch_attempts` before it is
-- broadcast; `tx_hash` is the newest one, or the one mined.
CREATE TABLE batches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    calls           INTEGER NOT NULL,
    nonce           INTEGER NOT NULL,
    tx_hash         TEXT    NOT NULL,
    mined_block     INTEGER,
    created_wall_at INTEGER NOT NULL
);
CREATE TABLE batch_attempts (
    batch_id     INTEGER NOT NULL REFERENCES batches (id),
    attempt      INTEGER NOT NULL,
    nonce        INTEGER NOT NULL,
    tx_hash      TEXT    NOT NULL,
    raw_tx       BLOB    NOT NULL,
    max_fee      TEXT,
    priority_fee TEXT,
    sent_wall_at INTEGER NOT NULL,
    PRIMARY KEY (batch_id, attempt)
);

-- An outbox call's batch and its position there (NULL: sent alone, before batches); how often a failed call
-- was queued again by the reconciler.
ALTER TABLE outbox ADD COLUMN batch_id INTEGER;
ALTER TABLE outbox ADD COLUMN batch_index INTEGER;
ALTER TABLE outbox ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;

-- Opened from an account (its `OrderFilled`): one conference of at most the terms' maxDuration, whatever
-- the model, its refund credited to the account.
ALTER TABLE agreements ADD COLUMN from_account INTEGER NOT NULL DEFAULT 0;
