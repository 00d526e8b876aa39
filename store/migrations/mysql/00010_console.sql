-- +goose Up
-- Run records: a numeric id for `wxcampaign runs show|retry ID` and the
-- console, the run's report (JSON: counts per outcome and reason, duration,
-- rate, replica, errors of every attempt) and when it last finished.
ALTER TABLE runs
    ADD COLUMN id          BIGINT      NOT NULL AUTO_INCREMENT UNIQUE,
    ADD COLUMN report      MEDIUMTEXT  NULL,
    ADD COLUMN finished_at DATETIME(6) NULL;
CREATE INDEX runs_campaign_id ON runs (campaign, id);

-- A campaign paused by an operator (console or `campaigns pause`): every
-- replica's scheduler skips its ticks while the row exists.
CREATE TABLE campaign_pauses (
    campaign  VARCHAR(128) NOT NULL,
    paused_by VARCHAR(128) NOT NULL,
    paused_at DATETIME(6)  NOT NULL,
    reason    VARCHAR(255) NOT NULL DEFAULT '',
    PRIMARY KEY (campaign)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every operator action (pause, resume, retry, login), newest last.
CREATE TABLE audit (
    id     BIGINT        NOT NULL AUTO_INCREMENT,
    at     DATETIME(6)   NOT NULL,
    actor  VARCHAR(128)  NOT NULL,
    action VARCHAR(32)   NOT NULL,
    target VARCHAR(255)  NOT NULL DEFAULT '',
    detail VARCHAR(1024) NOT NULL DEFAULT '',
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE audit;
DROP TABLE campaign_pauses;
DROP INDEX runs_campaign_id ON runs;
ALTER TABLE runs DROP COLUMN finished_at, DROP COLUMN report, DROP COLUMN id;
