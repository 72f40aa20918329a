-- +goose Up

-- fleet_events is the outbox of fleet events (package fleet): each row is
-- written in the transaction of the change it announces, and deleted once
-- the relay has made it webhook deliveries. An ID is unique only while
-- its row is here; the deliveries deduplicate by it after.
CREATE TABLE fleet_events (
    -- seq is the order the relay reads rows in. AUTOINCREMENT never hands
    -- a seq out twice, even after deletes.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    -- data is the payload's data object, as JSON.
    data TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object'),
    -- Timestamps are TEXT in the layout of 00001_cairn.sql.
    at TEXT NOT NULL
);

-- +goose Down
DROP TABLE fleet_events;
