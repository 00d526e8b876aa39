-- +goose Up
-- The (openid, template_id) index of every grant served only the revoke of
-- long-term grants on a reject; lt_openid holds the openid of long-term
-- grants only, with a partial index.
ALTER TABLE grants ADD COLUMN lt_openid TEXT NULL;
UPDATE grants SET lt_openid = openid WHERE kind = 'long_term';
DROP INDEX grants_user;
CREATE INDEX grants_long_term ON grants (lt_openid, template_id) WHERE lt_openid IS NOT NULL;

-- +goose Down
DROP INDEX grants_long_term;
CREATE INDEX grants_user ON grants (openid, template_id);
ALTER TABLE grants DROP COLUMN lt_openid;
