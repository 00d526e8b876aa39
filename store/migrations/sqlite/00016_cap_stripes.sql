-- +goose Up
-- MySQL only: the cap stripes' lock rows (SQLite has one writer and takes
-- no lock rows). Kept so that both dialects share version numbers.
SELECT 1;

-- +goose Down
SELECT 1;
