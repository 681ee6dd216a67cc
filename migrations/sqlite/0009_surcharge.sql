-- The escrow now keeps an agreement's price as its terms' price and the constraint surcharge beside it
-- (basis points), applied to each whole amount and rounded once. Agreements read before this keep 0.
ALTER TABLE agreements ADD COLUMN surcharge_bps INTEGER NOT NULL DEFAULT 0;
