-- +goose Up
-- Delivery events (subscribe_msg_sent_event) pushed by WeChat, one row per
-- msgid. The engine settles a send_log row left in flight by a dead process
-- by matching it to a delivery of the same openid and template.
CREATE TABLE deliveries (
    msgid       INTEGER NOT NULL PRIMARY KEY,
    openid      TEXT    NOT NULL,
    template_id TEXT    NOT NULL,
    errcode     INTEGER NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL DEFAULT '',
    sent_at     TEXT    NOT NULL,
    received_at TEXT    NOT NULL
);
CREATE INDEX deliveries_match ON deliveries (openid, template_id, sent_at);

-- MatchDelivery skips msgids a send_log row already holds.
CREATE INDEX send_log_msgid ON send_log (msgid);

-- +goose Down
DROP INDEX send_log_msgid;
DROP TABLE deliveries;
