-- +goose Up
CREATE TABLE grants (
    id             BIGINT       NOT NULL AUTO_INCREMENT,
    openid         VARCHAR(128) NOT NULL,
    template_id    VARCHAR(128) NOT NULL,
    kind           VARCHAR(16)  NOT NULL,
    scene          VARCHAR(64)  NOT NULL DEFAULT '',
    biz_no         VARCHAR(128) NOT NULL DEFAULT '',
    vars           TEXT         NULL,
    granted_at     DATETIME(6)  NOT NULL,
    request_id     VARCHAR(128) NOT NULL,
    status         VARCHAR(16)  NOT NULL DEFAULT 'active',
    consumed_at    DATETIME(6)  NULL,
    reserved_by    VARCHAR(128) NULL,
    reserved_until DATETIME(6)  NULL,
    PRIMARY KEY (id),
    KEY grants_available (template_id, status, id),
    KEY grants_user (openid, template_id),
    KEY grants_reserved (reserved_by)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE subscription_requests (
    request_id VARCHAR(128) NOT NULL,
    token      CHAR(16)     NOT NULL,
    PRIMARY KEY (request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE subscription_events (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    request_id  VARCHAR(128) NOT NULL,
    openid      VARCHAR(128) NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    result      VARCHAR(16)  NOT NULL,
    scene       VARCHAR(64)  NOT NULL DEFAULT '',
    biz_no      VARCHAR(128) NOT NULL DEFAULT '',
    at          DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY subscription_events_user (openid, template_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE send_log (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    campaign    VARCHAR(128) NOT NULL,
    occurrence  DATETIME(6)  NOT NULL,
    grant_id    BIGINT       NOT NULL,
    openid      VARCHAR(128) NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    holder      VARCHAR(128) NOT NULL,
    status      VARCHAR(16)  NOT NULL,
    reason      VARCHAR(255) NOT NULL DEFAULT '',
    msgid       BIGINT       NOT NULL DEFAULT 0,
    token       CHAR(16)     NOT NULL,
    started_at  DATETIME(6)  NOT NULL,
    finished_at DATETIME(6)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY send_log_once (campaign, occurrence, grant_id),
    KEY send_log_grant (campaign, grant_id),
    KEY send_log_status (status, holder)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE cap_keys (
    scope_key VARCHAR(300) NOT NULL,
    PRIMARY KEY (scope_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE cap_takes (
    id        BIGINT       NOT NULL AUTO_INCREMENT,
    scope_key VARCHAR(300) NOT NULL,
    ref       VARCHAR(255) NOT NULL,
    taken_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY cap_takes_window (scope_key, taken_at),
    KEY cap_takes_ref (ref)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE runs (
    campaign    VARCHAR(128) NOT NULL,
    occurrence  DATETIME(6)  NOT NULL,
    holder      VARCHAR(128) NOT NULL,
    lease_until DATETIME(6)  NOT NULL,
    checkpoint  BIGINT       NOT NULL DEFAULT 0,
    status      VARCHAR(16)  NOT NULL,
    summary     TEXT         NULL,
    PRIMARY KEY (campaign, occurrence)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE pauses (
    pause_key VARCHAR(128) NOT NULL,
    until     DATETIME(6)  NOT NULL,
    reason    VARCHAR(255) NOT NULL DEFAULT '',
    PRIMARY KEY (pause_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tokens (
    appid        VARCHAR(64)  NOT NULL,
    token        TEXT         NULL,
    expires_at   DATETIME(6)  NULL,
    lease_holder VARCHAR(128) NULL,
    lease_until  DATETIME(6)  NULL,
    PRIMARY KEY (appid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

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
