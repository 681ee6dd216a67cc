-- Availability with its evidence committed on-chain, attested by the offer's independent monitor.
-- terms.monitor: the account whose signed report alone settles the terms' conferences (NULL: none, the
-- operator reports). probes.at_ms: when each probe was taken on the chain's clock, in milliseconds (the
-- time its evidence record carries; probes kept before have none and count in no slot). sessions.evidence
-- and outbox.evidence: the commitment a settlement emitted / will carry; outbox.report: the monitor's
-- signature it carries (hex). reports: the monitors' signed reports with their records, one per conference.
ALTER TABLE terms ADD COLUMN monitor TEXT;
ALTER TABLE probes ADD COLUMN at_ms INTEGER;
ALTER TABLE sessions ADD COLUMN evidence TEXT;
ALTER TABLE outbox ADD COLUMN evidence TEXT;
ALTER TABLE outbox ADD COLUMN report TEXT;
CREATE TABLE reports (
    agreement_id     INTEGER NOT NULL,
    session          INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER NOT NULL,
    availability_bps INTEGER NOT NULL,
    evidence         TEXT    NOT NULL,
    signature        TEXT    NOT NULL,
    -- The records the evidence commits to and their probe interval (JSON, as the monitor handed them in).
    records          TEXT    NOT NULL,
    received_wall_at INTEGER NOT NULL,
    PRIMARY KEY (agreement_id, session)
);
