-- +goose Up
-- grants_long_term (lt_openid, template_id) served the revoke of long-term
-- grants on a reject. MySQL has no partial index, so it held an entry for
-- every one-time credit too (lt_openid NULL): one more index insert per
-- imported grant, about 15% of the server's CPU in an import (docs/
-- performance.md). Since 00013 grants_openid (openid, template_id) finds a
-- user's grants of a template, and the revoke probes it instead: it reads
-- the rejecting user's grants of the template (a template is usually of
-- one kind, so those are the long-term grants it revokes and their
-- history). lt_openid is still written: it marks the long-term rows, and
-- SQLite's partial index of the same name is kept.
DROP INDEX grants_long_term ON grants;

-- +goose Down
CREATE INDEX grants_long_term ON grants (lt_openid, template_id);
