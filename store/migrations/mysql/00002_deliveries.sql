-- +goose Up
-- Delivery events (subscribe_msg_sent_event) pushed by WeChat, one row per
-- msgid. The engine settles a send_log row left in flight by a dead process
-- by matching it to a delivery of the same openid and template.
CREATE TABLE deliveries (
    msgid       BIGINT       NOT NULL,
    openid      VARCHAR(128) NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    errcode     INT          NOT NULL DEFAULT 0,
    status      VARCHAR(255) NOT NULL DEFAULT '',
    sent_at     DATETIME(6)  NOT NULL,
    received_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (msgid),
    KEY deliveries_match (openid, template_id, sent_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- MatchDelivery skips msgids a send_log row already holds.
CREATE INDEX send_log_msgid ON send_log (msgid);

-- +goose Down
DROP INDEX send_log_msgid ON send_log;
DROP TABLE deliveries;
