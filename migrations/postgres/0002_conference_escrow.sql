-- PostgreSQL twin of migrations/sqlite/0002_conference_escrow.sql: the same tables and columns, in PostgreSQL types
-- (BIGINT for INTEGER, BYTEA for BLOB, an identity column for AUTOINCREMENT).

-- The escrow became ConferenceEscrow: four pricing models, terms versions instead of offers, sessions
-- (TimeLimited agreements run many conferences; FlexiblePeriod ones keep a warm conference in a
-- window), constraints and tokens. Records read from the old DynamicPriceEscrow cannot be carried
-- over: that contract is no longer deployed, so its agreements, offers, probes and outbox go, and the
-- watcher reads the new contract from its deployment block.
DROP TABLE outbox;
DROP TABLE probes;
DROP TABLE agreements;
DROP TABLE offers;
DELETE FROM chain_cursor;

-- Terms versions as published on-chain (immutable there, but for being closed to new agreements).
CREATE TABLE terms (
    id             BIGINT  PRIMARY KEY,
    offer_id       BIGINT  NOT NULL,
    model          TEXT    NOT NULL CHECK (model IN ('fixedPrice', 'dynamicPrice', 'timeLimited', 'flexiblePeriod')),
    token_id       BIGINT  NOT NULL,
    -- Per unit of the model: the conference, a second, or a minute.
    price          TEXT    NOT NULL,
    max_duration   BIGINT  NOT NULL,
    minimum_charge TEXT    NOT NULL,
    regions        BIGINT  NOT NULL,
    gdpr           BIGINT  NOT NULL CHECK (gdpr IN (0, 1)),
    open           BIGINT  NOT NULL DEFAULT 1 CHECK (open IN (0, 1))
);

-- One row per agreement. The chain columns are written only by the watcher from events (and the
-- contract's state at the event's block); the conference_* columns only by the reconciler.
CREATE TABLE agreements (
    id               BIGINT  PRIMARY KEY,
    terms_id         BIGINT  NOT NULL REFERENCES terms (id),
    model            TEXT    NOT NULL CHECK (model IN ('fixedPrice', 'dynamicPrice', 'timeLimited', 'flexiblePeriod')),
    customer         TEXT    NOT NULL,
    token_id         BIGINT  NOT NULL,
    price            TEXT    NOT NULL,
    deposit          TEXT    NOT NULL,
    allowed_regions  BIGINT  NOT NULL,
    gdpr             BIGINT  NOT NULL CHECK (gdpr IN (0, 1)),
    duration         BIGINT  NOT NULL,
    window_from      BIGINT ,
    window_to        BIGINT ,
    chain_status     TEXT    NOT NULL
                     CHECK (chain_status IN ('idle', 'requested', 'active', 'ended', 'settled', 'refunded')),
    -- The conference asked for or running: 1 for FixedPrice and DynamicPrice, else the starts so far.
    session          BIGINT  NOT NULL,
    signed_at        BIGINT  NOT NULL,
    sign_tx          TEXT    NOT NULL,
    requested_at     BIGINT ,
    started_at       BIGINT ,
    ends_at          BIGINT ,
    region           BIGINT ,
    activate_tx      TEXT,
    ended_at         BIGINT ,
    end_tx           TEXT,
    charged          TEXT    NOT NULL DEFAULT '0',
    availability_bps BIGINT ,
    refund           TEXT,
    refund_deferred  BIGINT ,
    refund_reason    TEXT CHECK (refund_reason IN ('cancelledByCustomer', 'declinedByOperator', 'activationTimedOut')),
    settle_tx        TEXT,

    conference_state TEXT    NOT NULL DEFAULT 'absent'
                     CHECK (conference_state IN ('absent', 'deploying', 'running', 'removed')),
    join_url         TEXT,
    deploy_count     BIGINT  NOT NULL DEFAULT 0,
    deployed_wall_at BIGINT ,
    removed_wall_at  BIGINT 
);

CREATE INDEX agreements_open ON agreements (chain_status, conference_state);

-- Every settled conference of an agreement (one for most models, one per session for TimeLimited;
-- session 0 is a FlexiblePeriod window that was never started).
CREATE TABLE sessions (
    agreement_id     BIGINT  NOT NULL REFERENCES agreements (id),
    session          BIGINT  NOT NULL,
    started_at       BIGINT ,
    ended_at         BIGINT ,
    availability_bps BIGINT  NOT NULL,
    charge           TEXT    NOT NULL,
    settle_tx        TEXT    NOT NULL,
    PRIMARY KEY (agreement_id, session)
);

-- Every probe of a running conference, by session: the evidence behind each availability figure.
CREATE TABLE probes (
    agreement_id BIGINT  NOT NULL REFERENCES agreements (id),
    session      BIGINT  NOT NULL,
    wall_at      BIGINT  NOT NULL,
    ok           BIGINT  NOT NULL CHECK (ok IN (0, 1)),
    detail       TEXT
);

CREATE INDEX probes_by_session ON probes (agreement_id, session);

-- Stops the customers signed off-chain (EIP-712 `Stop`), to be submitted with the settlement so that
-- stopping costs the customer no gas. One per conference; the first one received counts.
CREATE TABLE signed_stops (
    agreement_id     BIGINT  NOT NULL REFERENCES agreements (id),
    session          BIGINT  NOT NULL,
    started_at       BIGINT  NOT NULL,
    stopped_at       BIGINT  NOT NULL,
    deadline         BIGINT  NOT NULL,
    signature        BYTEA   NOT NULL,
    received_wall_at BIGINT  NOT NULL,
    PRIMARY KEY (agreement_id, session)
);

-- Transactions the operator means to send, each exactly once per session: a row is signed and stored
-- (nonce, hash, raw bytes) before it is broadcast, so a restart re-broadcasts the same transaction
-- instead of making a second one. `started_at` names the conference the call is about (see
-- `OperatorCall` in backend/src/chain.rs); `argument` is the region (activate) or availability (settle,
-- stopAndSettle, whose customer signature is read from `signed_stops`).
CREATE TABLE outbox (
    id              BIGINT  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    agreement_id    BIGINT  NOT NULL REFERENCES agreements (id),
    session         BIGINT  NOT NULL,
    call            TEXT    NOT NULL CHECK (call IN ('activate', 'decline', 'end', 'settle', 'stopAndSettle')),
    started_at      BIGINT  NOT NULL,
    argument        BIGINT ,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'done', 'failed')),
    nonce           BIGINT ,
    tx_hash         TEXT,
    raw_tx          BYTEA,
    outcome         TEXT,
    created_wall_at BIGINT  NOT NULL,
    UNIQUE (agreement_id, session, call)
);
