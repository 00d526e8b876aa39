-- +goose Up
-- Since 00009 the send_log row is a send's claim (inflight_grant) and its
-- cap take (scopes): nothing writes grant_reservations or cap_takes any
-- more, and 00009 copied the takes that counted onto their send_log rows.
DROP TABLE grant_reservations;
DROP TABLE cap_takes;

-- +goose Down
CREATE TABLE grant_reservations (
    grant_id BIGINT       NOT NULL,
    holder   VARCHAR(255) NOT NULL,
    until    DATETIME(6)  NOT NULL,
    PRIMARY KEY (grant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE cap_takes (
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
