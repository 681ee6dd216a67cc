-- Leadership among replicas: several backends may share one database, and exactly one of them acts
-- (watches, reconciles, sends transactions, probes) while the others serve the read API. The leader
-- holds a lease it renews every few seconds; when it dies, another takes the lease once it expires.
-- Times are the database's clock (milliseconds since the epoch), so replicas' clocks do not matter.
CREATE TABLE leases (
    name          TEXT    PRIMARY KEY,
    holder        TEXT    NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    -- Counts every change of holder: a fencing token, and the number of takeovers.
    term          BIGINT NOT NULL
);
