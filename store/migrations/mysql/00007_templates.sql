-- +goose Up
-- The template registry: the account's private templates as getTemplateList
-- listed them at the last `wxcampaign templates sync`, one row per template
-- in WeChat's order, keys (key, type, label, example, enum values) as a JSON
-- list in the template's order; template_syncs says when each appid's list
-- was last synced, so that an empty list is told apart from no sync.
CREATE TABLE templates (
    appid       VARCHAR(64)  NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    position    INT          NOT NULL,
    title       TEXT         NOT NULL,
    kind        VARCHAR(16)  NOT NULL,
    content     TEXT         NOT NULL,
    example     TEXT         NOT NULL,
    keys_json   TEXT         NOT NULL,
    synced_at   DATETIME(6)  NOT NULL,
    PRIMARY KEY (appid, template_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE template_syncs (
    appid     VARCHAR(64) NOT NULL,
    synced_at DATETIME(6) NOT NULL,
    PRIMARY KEY (appid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE template_syncs;
DROP TABLE templates;
