-- +goose Up

-- fleet_events is the outbox of fleet events (package fleet): each row is
-- written in the transaction of the change it announces, and deleted once
-- the relay has made it webhook deliveries. An ID is unique only while
-- its row is here; the deliveries deduplicate by it after.
CREATE TABLE fleet_events (
    -- seq is the order the relay reads rows in.
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    type text NOT NULL,
    -- data is the payload's data object.
    data jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE fleet_events;
