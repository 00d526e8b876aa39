-- +goose Up
-- The template registry (see the MySQL migration).
CREATE TABLE templates (
    appid       TEXT    NOT NULL,
    template_id TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    title       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    example     TEXT    NOT NULL,
    keys_json   TEXT    NOT NULL,
    synced_at   TEXT    NOT NULL,
    PRIMARY KEY (appid, template_id)
);

CREATE TABLE template_syncs (
    appid     TEXT NOT NULL PRIMARY KEY,
    synced_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE template_syncs;
DROP TABLE templates;
