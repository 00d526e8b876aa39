-- +goose Up
-- Times are TEXT in the fixed UTC form 'YYYY-MM-DD HH:MM:SS.ffffff', so that
-- text comparison orders them.
CREATE TABLE grants (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    openid         TEXT    NOT NULL,
    template_id    TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    scene          TEXT    NOT NULL DEFAULT '',
    biz_no         TEXT    NOT NULL DEFAULT '',
    vars           TEXT    NULL,
    granted_at     TEXT    NOT NULL,
    request_id     TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'active',
    consumed_at    TEXT    NULL,
    reserved_by    TEXT    NULL,
    reserved_until TEXT    NULL
);
CREATE INDEX grants_available ON grants (template_id, status, id);
CREATE INDEX grants_user ON grants (openid, template_id);
CREATE INDEX grants_reserved ON grants (reserved_by);

CREATE TABLE subscription_requests (
    request_id TEXT NOT NULL PRIMARY KEY,
    token      TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE subscription_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT NOT NULL,
    openid      TEXT NOT NULL,
    template_id TEXT NOT NULL,
    result      TEXT NOT NULL,
    scene       TEXT NOT NULL DEFAULT '',
    biz_no      TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL
);
CREATE INDEX subscription_events_user ON subscription_events (openid, template_id);

CREATE TABLE send_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign    TEXT    NOT NULL,
    occurrence  TEXT    NOT NULL,
    grant_id    INTEGER NOT NULL,
    openid      TEXT    NOT NULL,
    template_id TEXT    NOT NULL,
    holder      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    msgid       INTEGER NOT NULL DEFAULT 0,
    token       TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,
    finished_at TEXT    NULL
);
CREATE UNIQUE INDEX send_log_once ON send_log (campaign, occurrence, grant_id);
CREATE INDEX send_log_grant ON send_log (campaign, grant_id);
CREATE INDEX send_log_status ON send_log (status, holder);

CREATE TABLE cap_keys (
    scope_key TEXT NOT NULL PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE cap_takes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    scope_key TEXT NOT NULL,
    ref       TEXT NOT NULL,
    taken_at  TEXT NOT NULL
);
CREATE INDEX cap_takes_window ON cap_takes (scope_key, taken_at);
CREATE INDEX cap_takes_ref ON cap_takes (ref);

CREATE TABLE runs (
    campaign    TEXT    NOT NULL,
    occurrence  TEXT    NOT NULL,
    holder      TEXT    NOT NULL,
    lease_until TEXT    NOT NULL,
    checkpoint  INTEGER NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL,
    summary     TEXT    NULL,
    PRIMARY KEY (campaign, occurrence)
);

CREATE TABLE pauses (
    pause_key TEXT NOT NULL PRIMARY KEY,
    until     TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT ''
);

CREATE TABLE tokens (
    appid        TEXT NOT NULL PRIMARY KEY,
    token        TEXT NULL,
    expires_at   TEXT NULL,
    lease_holder TEXT NULL,
    lease_until  TEXT NULL
);

-- +goose Down
DROP TABLE tokens;
DROP TABLE pauses;
DROP TABLE runs;
DROP TABLE cap_takes;
DROP TABLE cap_keys;
DROP TABLE send_log;
DROP TABLE subscription_events;
DROP TABLE subscription_requests;
DROP TABLE grants;
