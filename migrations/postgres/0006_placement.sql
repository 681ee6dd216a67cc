-- Where each agreement's conference runs: the orchestrator's cluster and its region (a bit number of
-- the contract's region masks). Placement chooses them at deploy; the activation reports the region.
ALTER TABLE agreements ADD COLUMN conference_cluster TEXT;
ALTER TABLE agreements ADD COLUMN conference_region BIGINT;
