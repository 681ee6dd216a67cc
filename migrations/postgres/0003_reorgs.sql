-- PostgreSQL twin of migrations/sqlite/0003_reorgs.sql: the same tables and columns, in PostgreSQL types
-- (BIGINT for INTEGER, BYTEA for BLOB).

-- Exactly once under reorgs: what the watcher needs to notice a fork and undo what it read from the
-- abandoned branch, and what the settler needs to replace a stuck transaction without losing track
-- of the one that was mined.

-- Recent blocks the watcher processed (each batch's last block and every block with an event), by
-- number: a stored hash that is no longer the chain's at that height marks a fork. Pruned beyond the
-- maximum reorg depth.
CREATE TABLE chain_blocks (
    number BIGINT  PRIMARY KEY,
    hash   TEXT    NOT NULL
);

-- Every escrow event the watcher applied, in chain order, with the block it came from. On a fork the
-- events from the fork block on are deleted and the records they touched are rebuilt by replaying the
-- events that remain (`event` is the decoded event as JSON). Kept for good: an agreement's rebuild
-- starts at its signature, however old.
CREATE TABLE chain_events (
    block_number BIGINT  NOT NULL,
    log_index    BIGINT  NOT NULL,
    block_hash   TEXT    NOT NULL,
    -- The agreement or terms version the event is about (exactly one is set).
    agreement_id BIGINT,
    terms_id     BIGINT,
    event        TEXT    NOT NULL,
    PRIMARY KEY (block_number, log_index)
);

CREATE INDEX chain_events_by_agreement ON chain_events (agreement_id);

-- Every signed transaction of an outbox call: the first, and each fee bump of the same nonce (or a new
-- nonce when the first was dropped). Stored before broadcast; any one of them may be the one mined, so
-- the settler checks them all. The fees are NULL for transactions signed before this migration (they
-- are in raw_tx).
CREATE TABLE outbox_attempts (
    outbox_id    BIGINT  NOT NULL REFERENCES outbox (id),
    attempt      BIGINT  NOT NULL,
    nonce        BIGINT  NOT NULL,
    tx_hash      TEXT    NOT NULL,
    raw_tx       BYTEA   NOT NULL,
    max_fee      TEXT,
    priority_fee TEXT,
    sent_wall_at BIGINT  NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);

INSERT INTO outbox_attempts (outbox_id, attempt, nonce, tx_hash, raw_tx, sent_wall_at)
SELECT id, 1, nonce, tx_hash, raw_tx, created_wall_at FROM outbox WHERE raw_tx IS NOT NULL AND nonce IS NOT NULL;

-- The block the call's transaction was mined in (a call is done once that block is deep enough).
ALTER TABLE outbox ADD COLUMN mined_block BIGINT;
