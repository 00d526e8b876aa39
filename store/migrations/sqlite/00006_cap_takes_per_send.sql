-- +goose Up
-- One cap take row per send instead of one per scope key (see the MySQL
-- migration): openid, template and a scope mask (1 user_template, 2 user,
-- 4 template). The ut| lock rows are no longer used.
CREATE TABLE cap_takes_v2 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    openid      TEXT    NOT NULL,
    template_id TEXT    NOT NULL,
    scopes      INTEGER NOT NULL,
    ref         TEXT    NOT NULL,
    taken_at    TEXT    NOT NULL
);

INSERT INTO cap_takes_v2 (openid, template_id, scopes, ref, taken_at)
SELECT
    CASE
        WHEN scope_key LIKE 'ut|%' THEN substr(scope_key, 4, instr(substr(scope_key, 4), '|') - 1)
        WHEN scope_key LIKE 'u|%' THEN substr(scope_key, 3)
        ELSE ''
    END,
    CASE
        WHEN scope_key LIKE 'ut|%' THEN substr(scope_key, 4 + instr(substr(scope_key, 4), '|'))
        WHEN scope_key LIKE 't|%' THEN substr(scope_key, 3)
        ELSE ''
    END,
    CASE
        WHEN scope_key LIKE 'ut|%' THEN 1
        WHEN scope_key LIKE 'u|%' THEN 2
        ELSE 4
    END,
    ref, taken_at
FROM cap_takes ORDER BY id;

DROP TABLE cap_takes;
ALTER TABLE cap_takes_v2 RENAME TO cap_takes;
CREATE INDEX cap_takes_user ON cap_takes (openid, template_id, taken_at, scopes);
CREATE INDEX cap_takes_template ON cap_takes (template_id, taken_at, scopes);
CREATE INDEX cap_takes_ref ON cap_takes (ref);
DELETE FROM cap_keys WHERE scope_key LIKE 'ut|%';

-- +goose Down
CREATE TABLE cap_takes_v1 (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    scope_key TEXT NOT NULL,
    ref       TEXT NOT NULL,
    taken_at  TEXT NOT NULL
);

INSERT INTO cap_takes_v1 (scope_key, ref, taken_at)
SELECT 'ut|' || openid || '|' || template_id, ref, taken_at FROM cap_takes WHERE scopes & 1 <> 0
UNION ALL
SELECT 'u|' || openid, ref, taken_at FROM cap_takes WHERE scopes & 2 <> 0
UNION ALL
SELECT 't|' || template_id, ref, taken_at FROM cap_takes WHERE scopes & 4 <> 0;

INSERT OR IGNORE INTO cap_keys (scope_key)
SELECT DISTINCT 'ut|' || openid || '|' || template_id FROM cap_takes WHERE scopes & 1 <> 0;

DROP TABLE cap_takes;
ALTER TABLE cap_takes_v1 RENAME TO cap_takes;
CREATE INDEX cap_takes_window ON cap_takes (scope_key, taken_at);
CREATE INDEX cap_takes_ref ON cap_takes (ref);
