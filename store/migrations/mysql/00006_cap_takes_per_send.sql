-- +goose Up
-- One cap take row per send instead of one per scope key: the row carries
-- openid, template and a scope mask (1 user_template, 2 user, 4 template)
-- and each scope is counted by a covering range scan: user_template and
-- user by cap_takes_user (openid, template_id, taken_at, scopes), template
-- by cap_takes_template. The lock row of a send is u|openid (it also covers
-- user_template) and t|template for template limits; the ut| lock rows are
-- no longer used. Old rows become one row per old row with a single bit.
CREATE TABLE cap_takes_v2 (
    id          BIGINT           NOT NULL AUTO_INCREMENT,
    openid      VARCHAR(128)     NOT NULL,
    template_id VARCHAR(128)     NOT NULL,
    scopes      TINYINT UNSIGNED NOT NULL,
    ref         VARCHAR(255)     NOT NULL,
    taken_at    DATETIME(6)      NOT NULL,
    PRIMARY KEY (id),
    KEY cap_takes_user (openid, template_id, taken_at, scopes),
    KEY cap_takes_template (template_id, taken_at, scopes),
    KEY cap_takes_ref (ref)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO cap_takes_v2 (openid, template_id, scopes, ref, taken_at)
SELECT
    CASE
        WHEN scope_key LIKE 'ut|%' THEN SUBSTRING(scope_key, 4, LOCATE('|', scope_key, 4) - 4)
        WHEN scope_key LIKE 'u|%' THEN SUBSTRING(scope_key, 3)
        ELSE ''
    END,
    CASE
        WHEN scope_key LIKE 'ut|%' THEN SUBSTRING(scope_key, LOCATE('|', scope_key, 4) + 1)
        WHEN scope_key LIKE 't|%' THEN SUBSTRING(scope_key, 3)
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
RENAME TABLE cap_takes_v2 TO cap_takes;
DELETE FROM cap_keys WHERE scope_key LIKE 'ut|%';

-- +goose Down
CREATE TABLE cap_takes_v1 (
    id        BIGINT       NOT NULL AUTO_INCREMENT,
    scope_key VARCHAR(300) NOT NULL,
    ref       VARCHAR(255) NOT NULL,
    taken_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY cap_takes_window (scope_key, taken_at),
    KEY cap_takes_ref (ref)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO cap_takes_v1 (scope_key, ref, taken_at)
SELECT CONCAT('ut|', openid, '|', template_id), ref, taken_at FROM cap_takes WHERE scopes & 1 <> 0
UNION ALL
SELECT CONCAT('u|', openid), ref, taken_at FROM cap_takes WHERE scopes & 2 <> 0
UNION ALL
SELECT CONCAT('t|', template_id), ref, taken_at FROM cap_takes WHERE scopes & 4 <> 0;

INSERT IGNORE INTO cap_keys (scope_key)
SELECT DISTINCT CONCAT('ut|', openid, '|', template_id) FROM cap_takes WHERE scopes & 1 <> 0;

DROP TABLE cap_takes;
RENAME TABLE cap_takes_v1 TO cap_takes;
