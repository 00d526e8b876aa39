-- +goose Up
-- Run records (see the MySQL migration). SQLite cannot add an
-- AUTOINCREMENT column: existing runs are numbered in rowid order and a
-- trigger numbers each new run max(id)+1 (writers are serialised).
ALTER TABLE runs ADD COLUMN id INTEGER NULL;
ALTER TABLE runs ADD COLUMN report TEXT NULL;
ALTER TABLE runs ADD COLUMN finished_at TEXT NULL;
UPDATE runs SET id = rowid;
CREATE UNIQUE INDEX runs_id ON runs (id);
CREATE INDEX runs_campaign_id ON runs (campaign, id);

-- +goose StatementBegin
CREATE TRIGGER runs_number AFTER INSERT ON runs WHEN NEW.id IS NULL
BEGIN
    UPDATE runs SET id = (SELECT COALESCE(MAX(id), 0) + 1 FROM runs)
    WHERE campaign = NEW.campaign AND occurrence = NEW.occurrence;
END;
-- +goose StatementEnd

CREATE TABLE campaign_pauses (
    campaign  TEXT NOT NULL PRIMARY KEY,
    paused_by TEXT NOT NULL,
    paused_at TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT ''
);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE audit;
DROP TABLE campaign_pauses;
DROP TRIGGER runs_number;
DROP INDEX runs_campaign_id;
DROP INDEX runs_id;
ALTER TABLE runs DROP COLUMN finished_at;
ALTER TABLE runs DROP COLUMN report;
ALTER TABLE runs DROP COLUMN id;
