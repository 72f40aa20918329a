-- +goose Up

-- Remembered responses of source creation used to hold the write key in
-- plaintext; they are forgotten (a retry with the same Idempotency-Key then
-- creates another source) so that no write key stays at rest. Responses
-- remembered from now on hold it as null.
DELETE FROM idempotency_keys WHERE CAST(body AS TEXT) LIKE '%"write_key":"%';

-- +goose Down
SELECT 1;
