-- +goose Up
-- Per-user balances (GET /v1/users/{openid}/grants) read a user's grants:
-- an index keyed by openid, one index entry more per subscription
-- (docs/store.md). Their send log rows are found by send_log_user
-- (openid, template_id, ...) of migration 00009.
CREATE INDEX grants_openid ON grants (openid, template_id);

-- subscribe_msg_popup_event entries pushed by WeChat: what the user chose in
-- a popup. Recorded for balances and accept rates only; they create no
-- credits (the backend reports the same accepts with their business context).
-- A repeated push (same user, template and CreateTime) is stored once.
CREATE TABLE popup_events (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    openid      VARCHAR(128) NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    status      VARCHAR(32)  NOT NULL,
    popup_scene VARCHAR(32)  NOT NULL DEFAULT '',
    at          DATETIME(6)  NOT NULL,
    received_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY popup_events_once (openid, template_id, at),
    KEY popup_events_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Users a campaign's holdout kept unsent, one row per (campaign, openid,
-- occurrence), so that the lift report can find them.
CREATE TABLE holdouts (
    campaign    VARCHAR(128) NOT NULL,
    openid      VARCHAR(128) NOT NULL,
    occurrence  DATETIME(6)  NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    at          DATETIME(6)  NOT NULL,
    PRIMARY KEY (campaign, openid, occurrence),
    KEY holdouts_at (campaign, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE holdouts;
DROP TABLE popup_events;
DROP INDEX grants_openid ON grants;
