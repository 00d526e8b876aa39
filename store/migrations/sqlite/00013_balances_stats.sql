-- +goose Up
-- See the MySQL migration: the per-user index of grants for balances,
-- popup events, held-out users.
CREATE INDEX grants_openid ON grants (openid, template_id);

CREATE TABLE popup_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    openid      TEXT NOT NULL,
    template_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    popup_scene TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE UNIQUE INDEX popup_events_once ON popup_events (openid, template_id, at);
CREATE INDEX popup_events_at ON popup_events (at);

CREATE TABLE holdouts (
    campaign    TEXT NOT NULL,
    openid      TEXT NOT NULL,
    occurrence  TEXT NOT NULL,
    template_id TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (campaign, openid, occurrence)
) WITHOUT ROWID;
CREATE INDEX holdouts_at ON holdouts (campaign, at);

-- +goose Down
DROP TABLE holdouts;
DROP TABLE popup_events;
DROP INDEX grants_openid;
