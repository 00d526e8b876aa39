-- +goose Up
-- See the MySQL migration: the send_log row is the claim and the cap take
-- since 00009; nothing writes these tables any more.
DROP TABLE grant_reservations;
DROP TABLE cap_takes;

-- +goose Down
CREATE TABLE grant_reservations (
    grant_id INTEGER NOT NULL PRIMARY KEY,
    holder   TEXT    NOT NULL,
    until    TEXT    NOT NULL
);
CREATE TABLE cap_takes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    openid      TEXT    NOT NULL,
    template_id TEXT    NOT NULL,
    scopes      INTEGER NOT NULL,
    ref         TEXT    NOT NULL,
    taken_at    TEXT    NOT NULL
);
CREATE INDEX cap_takes_user ON cap_takes (openid, template_id, taken_at, scopes);
CREATE INDEX cap_takes_template ON cap_takes (template_id, taken_at, scopes);
CREATE INDEX cap_takes_ref ON cap_takes (ref);
