-- Who may join a conference: the customer registers participants' addresses off-chain (EIP-712
-- `Participants`, signed in its wallet) and the backend issues Jitsi join tokens only to them and to
-- the customer. One registration per agreement, replaced whole by a newer one (a larger `issued_at`);
-- the customer's signature is kept as the evidence of the list. Addresses and regions are personal
-- data: no route reads them back, only their count.
CREATE TABLE conference_settings (
    agreement_id     INTEGER PRIMARY KEY REFERENCES agreements (id),
    -- sd (360p), hd (720p) or fullhd (1080p).
    quality          TEXT    NOT NULL,
    -- Unix seconds the customer signed into the registration; a newer one replaces it.
    issued_at        INTEGER NOT NULL,
    signature        BLOB    NOT NULL,
    received_wall_at INTEGER NOT NULL
);

-- The registered participants, in the order the customer signed them (`position`, from 0), each with
-- the region it joins from (a bit number of the contract's region masks: 0 EU, 1 US, 2 Asia on the
-- dev chain), for placement. Addresses are lowercase hex with 0x.
CREATE TABLE participants (
    agreement_id INTEGER NOT NULL REFERENCES conference_settings (agreement_id),
    address      TEXT    NOT NULL,
    region       INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    PRIMARY KEY (agreement_id, address)
);
